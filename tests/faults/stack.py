"""The real system for fault cases 1-8: in-process agent Publishers (optionally behind a
TcpProxy), ``loaxa collector`` as a process, real Mosquitto and InfluxDB, and readers that
turn InfluxDB back into (station, seq, ts) keys."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import weakref
from pathlib import Path

from agent.mqtt_config import MqttConfig, StationConfig
from agent.publisher import Publisher
from agent.queue import OfflineQueue
from agent.state import AgentState
from loaxa.topics import Kind

ROOT = Path(__file__).resolve().parents[2]
INVENTORY = ROOT / "config" / "inventory.example.toml"
DB = "loaxa_faults"
# Stations of the example inventory that have their own agent (MQTT).
STATIONS = {
    "cb-01267": StationConfig(id="cb-01267", province="cao-bang", commune="01273"),
    "cb-01290": StationConfig(id="cb-01290", province="cao-bang", commune="01290"),
    "cb-01309": StationConfig(id="cb-01309", province="cao-bang", commune="01290"),
}
Key = tuple[str, int, int]  # (station, seq, ts ms)


def write_collector_config(
    tmp: Path, mqtt_port: int, influx_url: str, http_port: int, extra: str = ""
) -> Path:
    path = tmp / "collector.toml"
    path.write_text(
        f'inventory = "{INVENTORY}"\n'
        '[daemon]\nstate_db = "state.sqlite"\nhealth_tick_s = 0.5\nalert_tick_s = 0.5\n'
        f'[mqtt]\nport = {mqtt_port}\nclient_id = "collector-faults"\nkeepalive_s = 5\n'
        f'[influx]\nurl = "{influx_url}"\ndb = "{DB}"\ncreate_database = true\n'
        "flush_interval_ms = 100\n"
        '[spool]\npath = "spool.sqlite"\ndead_letter_path = "dead.jsonl"\n'
        f"[http]\nport = {http_port}\n{extra}"
    )
    return path


class CollectorProcess:
    """``loaxa collector`` as a child process; ``kill()`` is a kill -9."""

    def __init__(self, config: Path, http_port: int) -> None:
        self.config, self.http_port = config, http_port
        self.log = config.parent / "collector.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> CollectorProcess:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "loaxa.cli", "collector", "--config", str(self.config)],
                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        return self

    def signal(self, sig: int) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        code = self.proc.wait(30)
        self.proc = None
        return code

    def kill(self) -> int:
        return self.signal(signal.SIGKILL)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def healthz(self) -> dict | None:
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.http_port}/healthz", timeout=2
            ) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as err:  # 503 carries the same JSON body
            return json.loads(err.read())
        except OSError:
            return None

    def broker_connected(self) -> bool:
        report = self.healthz() or {}
        return bool(report.get("checks", {}).get("broker_connected"))

    def metric(self, name: str) -> float:
        """The value of one Prometheus sample, e.g. 'loaxa_ingest_messages_total{kind="event"}'
        (0 when absent or the daemon does not answer)."""
        try:
            url = f"http://127.0.0.1:{self.http_port}/metrics"
            with urllib.request.urlopen(url, timeout=2) as r:
                text = r.read().decode()
        except OSError:
            return 0.0
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    def spool_empty(self) -> bool:
        report = self.healthz()
        return report is not None and report.get("spool_depth") == 0

    def cleanup(self) -> None:
        if self.running:
            self.kill()


def stored_rows(influxdb, measurement: str = "telemetry") -> list[dict]:
    try:
        return influxdb.rows(f'SELECT * FROM "{measurement}"', DB)
    except (RuntimeError, KeyError, OSError):
        return []


def stored_keys(influxdb) -> list[Key]:
    """Every telemetry point as (station, seq, ts): one per point InfluxDB holds. A row without
    ``seq`` is a point the query caught mid-write (InfluxDB 1.x stores each field on its own):
    left out of this read, it is whole at the next poll."""
    rows = stored_rows(influxdb)
    return [(r["station"], int(r["seq"]), int(r["time"])) for r in rows if r["seq"] is not None]


def make_agent(
    tmp: Path, station: str, port: int, max_bytes: int = 10_000_000, keepalive_s: int = 5
) -> Publisher:
    """An agent's MQTT side (Publisher + durable queue + counters), state under tmp/station."""
    cfg = MqttConfig(
        host="127.0.0.1", port=port, keepalive_s=keepalive_s, retry_min_s=0.1, retry_max_s=0.5
    )
    queue = OfflineQueue(tmp / station / "queue.sqlite", max_bytes)
    return Publisher(STATIONS[station], cfg, queue, AgentState(tmp / station / "state"))


_LAST_TS: weakref.WeakKeyDictionary[Publisher, int] = weakref.WeakKeyDictionary()


def publish_reading(pub: Publisher, n: int, ts: int | None = None) -> Key:
    """One telemetry reading; returns its key (seq is the queue's next one). Without ``ts``,
    now, but strictly after the agent's previous reading: InfluxDB keys a point by station and
    time, so two readings in the same millisecond would be one point."""
    if ts is None:
        ts = max(int(time.time() * 1000), _LAST_TS.get(pub, 0) + 1)
    _LAST_TS[pub] = ts
    seq = pub.queue.next_seq
    pub.publish(Kind.TELEMETRY, {"agent_uptime_s": n}, ts)
    return (pub.station.id, seq, ts)


def count_keys(keys: list[Key]) -> tuple[int, int]:
    """(distinct keys, duplicated keys) of a list of keys."""
    distinct = set(keys)
    return len(distinct), len(keys) - len(distinct)
