"""An in-process collector (collector.daemon.Collector) against the real Mosquitto and InfluxDB
fixtures, and a plain MQTT publisher that plays agents, for the fault cases 9-17."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from collector.config import load_config
from collector.daemon import Collector
from loaxa.payloads import Status, Telemetry, to_json
from loaxa.topics import Kind, station_topic

ROOT = Path(__file__).resolve().parents[2]
INVENTORY = ROOT / "config" / "inventory.example.toml"
DB = "loaxa_faults"


def write_config(
    tmp: Path,
    mqtt_port: int,
    influx_url: str,
    *,
    extra: str = "",
    client_id: str = "col-f",
    inventory: Path = INVENTORY,
) -> Path:
    path = tmp / "collector.toml"
    path.write_text(
        f'inventory = "{inventory}"\n'
        f'[daemon]\nstate_db = "state.sqlite"\nhealth_tick_s = 0.5\nshutdown_timeout_s = 2\n'
        f'[mqtt]\nport = {mqtt_port}\nclient_id = "{client_id}"\n'
        f'[influx]\nurl = "{influx_url}"\ndb = "{DB}"\ncreate_database = true\n'
        "flush_interval_ms = 100\n"
        '[spool]\npath = "spool.sqlite"\ndead_letter_path = "dead.jsonl"\n'
        "[alerts]\nenabled = false\n[http]\nenabled = false\n" + extra
    )
    return path


def fleet_inventory(tmp: Path, n: int) -> tuple[Path, list[tuple[str, str]]]:
    """The example inventory plus ``n`` stations ``cb-f0000``... in its two communes; returns the
    file and the (station, commune) pairs added."""
    added = [(f"cb-f{i:04d}", ("01273", "01290")[i % 2]) for i in range(n)]
    blocks = [
        f'\n[[stations]]\nid = "{sid}"\ncommune = "{commune}"\nname = "Trạm {i}"\n'
        f'clusters = ["wired"]\nlat = 22.{i:04d}\nlon = 106.{i:04d}\nposition = "demo"\n'
        for i, (sid, commune) in enumerate(added)
    ]
    path = tmp / "inventory.toml"
    path.write_text(INVENTORY.read_text(encoding="utf-8") + "".join(blocks), encoding="utf-8")
    return path, added


class RunningCollector:
    """``with RunningCollector(config_path) as c:`` starts and always stops the daemon."""

    def __init__(self, config: Path) -> None:
        self.collector = Collector(load_config(config))

    def __enter__(self) -> Collector:
        self.collector.start()
        return self.collector

    def __exit__(self, *exc: object) -> None:
        self.collector.stop()


class AgentLike:
    """A paho client publishing loaxa payloads as an agent would (QoS 1), for many stations."""

    def __init__(self, port: int, client_id: str = "fault-agent") -> None:
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        self.client.max_inflight_messages_set(200)
        self.client.connect("127.0.0.1", port, 30)
        self.client.loop_start()
        self._lock = threading.Lock()

    def send(self, station: str, commune: str, kind: Kind, payload: bytes) -> None:
        topic = station_topic("cao-bang", commune, station, kind)
        info = self.client.publish(topic, payload, qos=1, retain=kind is Kind.STATUS)
        info.wait_for_publish(10)

    def raw(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(10)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def telemetry(station: str, seq: int, ts: int, **fields: Any) -> bytes:
    return to_json(
        Telemetry(station=station, session=1, seq=seq, ts=ts, agent_uptime_s=seq, **fields)
    )


def status(station: str, session: int, state: str, ts: int | None = None) -> bytes:
    ts = ts if ts is not None else now_ms()
    return to_json(Status(station=station, session=session, seq=0, ts=ts, state=state))


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def rows(influxdb: Any, query: str) -> list[dict[str, Any]]:
    try:
        return influxdb.rows(query, DB)
    except (RuntimeError, KeyError):
        return []
