"""`loaxa collector --check`, `loaxa status`, `loaxa ack` through loaxa.cli.main."""

from __future__ import annotations

import json
import queue
import time
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from collector.config import load_config
from collector.health.engine import HealthEngine
from collector.health.store import HealthStore
from collector.inventory import load_inventory
from loaxa.cli import main
from loaxa.payloads import Telemetry
from tests.live_inventory import live_inventory

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "config" / "collector.example.toml"
INVENTORY = ROOT / "config" / "inventory.example.toml"


def config_file(tmp_path: Path, mqtt_port: int = 1883) -> Path:
    path = tmp_path / "collector.toml"
    path.write_text(  # the example inventory without its dated maintenance (live clock)
        f'inventory = "{live_inventory(tmp_path)}"\n[daemon]\nstate_db = "state.sqlite"\n'
        f"[mqtt]\nport = {mqtt_port}\n"
    )
    return path


def test_check_example(capsys):
    assert main(["collector", "--config", str(EXAMPLE), "--check"]) == 0
    assert "OK - 4 stations of Cao Bằng" in capsys.readouterr().out


def test_bad_config_exits_2_naming_the_key(tmp_path, capsys):
    path = tmp_path / "c.toml"
    path.write_text(f'inventory = "{INVENTORY}"\n[http]\nport = "eighty"\n')
    assert main(["collector", "--config", str(path), "--check"]) == 2
    assert "http.port:" in capsys.readouterr().err


def test_missing_inventory_exits_2(tmp_path, capsys):
    path = tmp_path / "c.toml"
    path.write_text('inventory = "nowhere.toml"\n')
    assert main(["collector", "--config", str(path), "--check"]) == 2
    assert "nowhere.toml" in capsys.readouterr().err


def test_status_table_from_the_state_store(tmp_path, capsys):
    path = config_file(tmp_path)
    config = load_config(path)
    engine = HealthEngine(load_inventory(config.inventory), config.health)
    now = int(time.time() * 1000)
    engine.observe(Telemetry(station="cb-01267", session=1, seq=1, ts=now, agent_uptime_s=1), now)
    store = HealthStore(config.daemon.state_db)
    store.save(engine.snapshot(), now)
    store.close()

    assert main(["status", "--config", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["COMMUNE", "STATION", "STATE", "SINCE", "TECHNICIAN"]
    (row,) = [line for line in lines if "cb-01267" in line]
    assert "Phường Thục Phán" in row
    assert "operating" in row
    assert "Nông Văn Minh" in row
    assert len(lines) == 1 + 4  # header + every inventory station
    (never_seen,) = [line for line in lines if "cb-01309" in line]
    assert "unknown" in never_seen


def test_status_without_state_says_so(tmp_path, capsys):
    assert main(["status", "--config", str(config_file(tmp_path))]) == 1
    assert "no state yet" in capsys.readouterr().err


def test_ack_is_published_to_the_broker(tmp_path, mosquitto, capsys):
    got: queue.Queue = queue.Queue()
    sub = paho.Client(CallbackAPIVersion.VERSION2, client_id="ops-listener")
    sub.on_message = lambda c, u, m: got.put((m.topic, json.loads(m.payload)))
    sub.on_subscribe = lambda *a: got.put("subscribed")
    sub.connect("127.0.0.1", mosquitto.port)
    sub.subscribe("loaxa/v1/cao-bang/_ops/ack/#", qos=1)
    sub.loop_start()
    try:
        assert got.get(timeout=10) == "subscribed"
        path = config_file(tmp_path, mosquitto.port)
        assert main(["ack", "123", "--config", str(path), "--by", "Nông Văn Minh"]) == 0
        topic, payload = got.get(timeout=10)
        assert topic == "loaxa/v1/cao-bang/_ops/ack/_any/123"
        assert payload == {"by": "Nông Văn Minh"}
        assert "sent" in capsys.readouterr().out
    finally:
        sub.disconnect()
        sub.loop_stop()


def test_ack_without_broker_fails_cleanly(tmp_path, capsys):
    from tests.servers import free_port

    path = config_file(tmp_path, free_port())
    assert main(["ack", "123", "--config", str(path), "--by", "X"]) == 1
    assert "ack failed" in capsys.readouterr().err


def test_unwritable_state_dir_exits_1(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    path = tmp_path / "c.toml"
    path.write_text(
        f'inventory = "{INVENTORY}"\n[daemon]\nstate_db = "file/state.sqlite"\n'
        '[spool]\npath = "spool.sqlite"\ndead_letter_path = "dead.jsonl"\n'
    )
    assert main(["collector", "--config", str(path)]) == 1
    assert "collector cannot start" in capsys.readouterr().err
