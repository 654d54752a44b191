"""The collector daemon end to end: `loaxa collector` as a process, real Mosquitto, real
InfluxDB 1.x. Bad messages are rejected by reason while the good ones around them are stored;
kill -9 mid-stream loses nothing and duplicates nothing."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from loaxa.payloads import Telemetry, to_json
from loaxa.topics import Kind, station_topic
from tests.live_inventory import live_inventory
from tests.servers import free_port, wait_until

ROOT = Path(__file__).resolve().parents[1]
INVENTORY = ROOT / "config" / "inventory.example.toml"
TOPIC = station_topic("cao-bang", "01273", "cb-01267", Kind.TELEMETRY)
DB = "loaxa_test"


def write_config(tmp: Path, mqtt_port: int, influx_url: str, http_port: int) -> Path:
    path = tmp / "collector.toml"
    path.write_text(
        f'inventory = "{live_inventory(tmp)}"\n'  # no maintenance window to run into
        f'[daemon]\nstate_db = "state.sqlite"\nhealth_tick_s = 1\n'
        f'[mqtt]\nport = {mqtt_port}\nclient_id = "collector-e2e"\n'
        f'[influx]\nurl = "{influx_url}"\ndb = "{DB}"\ncreate_database = true\n'
        "flush_interval_ms = 100\n"
        '[spool]\npath = "spool.sqlite"\ndead_letter_path = "dead.jsonl"\n'
        f"[http]\nport = {http_port}\n"
    )
    return path


class Daemon:
    def __init__(self, config: Path, log: Path) -> None:
        self.config, self.log = config, log
        self.proc: subprocess.Popen | None = None

    def start(self) -> Daemon:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "loaxa.cli", "collector", "--config", str(self.config)],
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        return self

    def signal(self, sig: int) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        code = self.proc.wait(30)
        self.proc = None
        return code

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


@pytest.fixture
def collector(tmp_path, mosquitto, influxdb):
    http_port = free_port()
    config = write_config(tmp_path, mosquitto.port, influxdb.url, http_port)
    daemon = Daemon(config, tmp_path / "collector.log")
    daemon.http_port = http_port
    yield daemon
    if daemon.running:
        daemon.signal(signal.SIGKILL)


def healthz(port: int) -> dict | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as err:  # 503: unhealthy, with the same JSON body
        return json.loads(err.read())
    except OSError:
        return None


def metrics(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        return r.read().decode()


def telemetry(seq: int, station: str = "cb-01267", base: int | None = None) -> bytes:
    ts = (base or int(time.time() * 1000)) + seq
    return to_json(Telemetry(station=station, session=1, seq=seq, ts=ts, agent_uptime_s=seq))


def stored_seqs(influxdb, station: str = "cb-01267") -> list[int]:
    try:
        rows = influxdb.rows(f"SELECT seq FROM telemetry WHERE station = '{station}'", DB)
    except (RuntimeError, KeyError):
        return []
    return [r["seq"] for r in rows]


class Publisher:
    def __init__(self, port: int) -> None:
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id="e2e-agent")
        self.client.max_inflight_messages_set(100)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def send(self, topic: str, payload: bytes) -> paho.MQTTMessageInfo:
        return self.client.publish(topic, payload, qos=1)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_bad_messages_rejected_good_ones_stored(collector, mosquitto, influxdb):
    collector.start()
    wait_until(lambda: (healthz(collector.http_port) or {}).get("ok"), 30, what="collector healthy")
    pub = Publisher(mosquitto.port)
    base = int(time.time() * 1000)
    good = lambda seq: (TOPIC, telemetry(seq, base=base))  # noqa: E731
    impersonated = station_topic("cao-bang", "01290", "cb-01267", Kind.TELEMETRY)
    unknown = station_topic("cao-bang", "01273", "cb-99999", Kind.TELEMETRY)
    messages = [
        good(1),
        (TOPIC, b'{"v": 1, "station": '),  # malformed
        good(2),
        (TOPIC, b"{" + b" " * 20_000 + b"}"),  # oversize
        good(3),
        (TOPIC, json.dumps({"v": 1, "station": "cb-01267", "kind": "telemetry"}).encode()),
        good(4),
        (unknown, telemetry(5, station="cb-99999", base=base)),
        good(6),
        (impersonated, telemetry(7, base=base)),
        good(8),
    ]
    for info in [pub.send(t, p) for t, p in messages]:
        info.wait_for_publish(10)
    pub.close()
    wait_until(lambda: len(stored_seqs(influxdb)) == 6, 30, what="good messages in InfluxDB")
    assert sorted(stored_seqs(influxdb)) == [1, 2, 3, 4, 6, 8]
    assert collector.running
    text = metrics(collector.http_port)
    for reason in ("malformed", "oversize", "schema", "unknown_station", "impersonation"):
        assert f'loaxa_ingest_rejected_total{{reason="{reason}"}} 1.0' in text, reason
    assert 'loaxa_ingest_messages_total{kind="telemetry"} 6.0' in text

    def rejects_in_influx() -> dict[str, int]:
        try:
            rows = influxdb.rows('SELECT sum("count") FROM ingest_reject GROUP BY reason', DB)
        except (RuntimeError, KeyError):
            return {}
        return {r["reason"]: r["sum"] for r in rows}

    expected = {
        r: 1 for r in ("malformed", "oversize", "schema", "unknown_station", "impersonation")
    }
    wait_until(lambda: rejects_in_influx() == expected, 30, what="reject points in InfluxDB")
    state = influxdb.rows("SELECT * FROM station_state WHERE station = 'cb-01267'", DB)
    assert state and state[-1]["state"] == "operating"
    province = influxdb.rows("SELECT * FROM compliance WHERE scope = 'province'", DB)
    assert province and province[-1]["required"] == 2  # communes counted (none in maintenance)
    assert collector.signal(signal.SIGTERM) == 0
    log = collector.log.read_text()
    for reason in ("malformed", "oversize", "schema", "unknown_station", "impersonation"):
        assert f"rejected from mqtt: {reason}:" in log
    assert "collector stopped" in log


def test_kill_9_mid_stream_loses_and_duplicates_nothing(collector, mosquitto, influxdb):
    n = 3000
    collector.start()
    wait_until(lambda: (healthz(collector.http_port) or {}).get("ok"), 30, what="collector healthy")
    pub = Publisher(mosquitto.port)
    base = int(time.time() * 1000) - 10 * n
    infos: list[paho.MQTTMessageInfo] = []

    def publish_all() -> None:
        for seq in range(n):
            infos.append(pub.send(TOPIC, telemetry(seq, base=base)))
            if seq % 100 == 99:  # an agent's pace, so the kill lands mid-stream
                infos[-1].wait_for_publish(10)

    sender = threading.Thread(target=publish_all)
    sender.start()
    wait_until(lambda: len(stored_seqs(influxdb)) > n // 10, 30, what="stream under way")
    assert collector.signal(signal.SIGKILL) == -signal.SIGKILL
    sender.join(60)
    for info in infos:
        info.wait_for_publish(10)  # the broker has every message: it queues them for us
    pub.close()
    stored_before = len(stored_seqs(influxdb))
    assert stored_before < n  # the kill really interrupted the stream

    collector.start()
    wait_until(lambda: len(stored_seqs(influxdb)) >= n, 60, what="every message stored")
    seqs = stored_seqs(influxdb)
    assert sorted(seqs) == list(range(n))  # each seq exactly once
    assert collector.signal(signal.SIGTERM) == 0
    assert "session present: True" in collector.log.read_text()  # resumed, not a new session


@pytest.mark.slow
def test_throughput_backlog_of_30k(collector, mosquitto, influxdb):
    """Drain rate of a 30k-message backlog through the whole daemon (validate, spool, health)."""
    n = 30_000
    collector.start()
    wait_until(lambda: (healthz(collector.http_port) or {}).get("ok"), 30, what="collector healthy")
    assert collector.signal(signal.SIGTERM) == 0  # the broker now queues for its session
    pub = Publisher(mosquitto.port)
    base = int(time.time() * 1000) - 10 * n
    infos = [pub.send(TOPIC, telemetry(seq, base=base)) for seq in range(n)]
    for info in infos:
        info.wait_for_publish(60)
    pub.close()
    start = time.monotonic()
    collector.start()
    pattern = f'loaxa_ingest_messages_total{{kind="telemetry"}} {float(n)}'
    wait_until(
        lambda: pattern in (_metrics_or_empty(collector.http_port)),
        300,
        interval=0.2,
        what="backlog ingested",
    )
    rate = n / (time.monotonic() - start)
    print(f"daemon ingested a {n}-message QoS 1 backlog at {rate:.0f} msg/s")
    wait_until(lambda: len(stored_seqs(influxdb)) == n, 120, interval=0.5, what="all in InfluxDB")
    assert collector.signal(signal.SIGTERM) == 0


def _metrics_or_empty(port: int) -> str:
    try:
        return metrics(port)
    except OSError:
        return ""


def test_influx_outage_spooled_reported_and_drained(collector, mosquitto, influxdb):
    collector.start()
    wait_until(lambda: (healthz(collector.http_port) or {}).get("ok"), 30, what="collector healthy")
    influxdb.stop()
    pub = Publisher(mosquitto.port)
    base = int(time.time() * 1000)
    for info in [pub.send(TOPIC, telemetry(seq, base=base)) for seq in range(50)]:
        info.wait_for_publish(10)
    pub.close()

    def unhealthy_and_spooled() -> dict | None:
        # ingest may still be spooling when the first write fails: wait for both
        report = healthz(collector.http_port)
        if report and report["checks"]["influx_writable"] is False:
            return report if report["spool_depth"] >= 50 else None  # held durably meanwhile
        return None

    report = wait_until(
        unhealthy_and_spooled, 30, what="/healthz: InfluxDB unwritable, 50 messages spooled"
    )
    assert report["ok"] is False
    assert collector.running

    influxdb.start()
    wait_until(lambda: len(stored_seqs(influxdb)) == 50, 60, what="spool drained")
    wait_until(lambda: (healthz(collector.http_port) or {}).get("ok"), 30, what="healthy again")
    assert collector.signal(signal.SIGTERM) == 0
