"""The rig of fault case 16 (collector groups): a generated inventory and group config, a
webhook alert sink, a fleet publishing telemetry, member processes and readers of the
partitions' state stores."""

from __future__ import annotations

import json
import queue
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from zoneinfo import ZoneInfo

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from loaxa.payloads import Telemetry, to_json
from loaxa.topics import Kind, station_topic
from tests.faults.stack import DB, ROOT

PROVINCE = "grp"
PARTITIONS = 4
COMMUNES = [f"{30000 + 11 * i:05d}" for i in range(12)]
PER_COMMUNE = 2
POLL_S = 0.5
# down after 3 x 1 s without a message, an incident after 6 s more: a takeover must be well
# inside these 9 s, or the stations of the partitions it moves would be flagged
INTERVAL_S, DOWN_AFTER, DAMPING_S = 1, 3, 6


def station(commune: str, j: int) -> str:
    return f"g-{commune}-{j}"


def write_inventory(path: Path, communes: list[str]) -> Path:
    """Communes of 2 stations; the broadcast window is 12 h away (no silence judged now)."""
    tz = ZoneInfo("Asia/Ho_Chi_Minh")
    start = datetime.now(tz) + timedelta(hours=12)
    window = f"{start:%H}:00-{start:%H}:30"
    out = [
        "[province]", 'code = "98"', f'slug = "{PROVINCE}"', 'name = "Group"',
        'department = "Dept"',
        "[defaults]", f"telemetry_interval_s = {INTERVAL_S}",
        f"down_after_intervals = {DOWN_AFTER}", f"damping_s = {DAMPING_S}",
        "[[schedules]]", 'id = "daily"', f'windows = ["{window}"]',
        "[[technicians]]", 'id = "tech"', 'name = "Tech"', 'phone = "+84912345678"',
    ]  # fmt: skip
    for code in communes:
        out += ["[[communes]]", f'code = "{code}"', f'name = "Xã {code}"']
        out += ['technicians = ["tech"]', 'schedule = "daily"']
        for j in range(PER_COMMUNE):
            out += ["[[stations]]", f'id = "{station(code, j)}"', f'commune = "{code}"']
            out += [f'name = "Đài {code}-{j}"', "lat = 22.6", "lon = 106.2", 'position = "demo"']
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return path


def write_config(
    tmp: Path,
    mqtt_port: int,
    influx_url: str,
    hook: str,
    partitions: int = PARTITIONS,
    communes: list[str] = COMMUNES,
) -> Path:
    path = tmp / "collector.toml"
    path.write_text(
        f'inventory = "{write_inventory(tmp / "inventory.toml", communes)}"\n'
        '[daemon]\nstate_db = "state.sqlite"\nhealth_tick_s = 0.5\nalert_tick_s = 0.5\n'
        "dashboard_feed_s = 0\nshutdown_timeout_s = 10\n"
        f'[mqtt]\nport = {mqtt_port}\nclient_id = "grp-collector"\nkeepalive_s = 5\n'
        f'[influx]\nurl = "{influx_url}"\ndb = "{DB}"\ncreate_database = true\n'
        "flush_interval_ms = 100\n"
        '[spool]\npath = "spool.sqlite"\ndead_letter_path = "dead.jsonl"\n'
        '[alerts]\nchannel_order = ["webhook"]\ncopy_to = []\n'
        "[alerts.routing]\ngroup_window_s = 0\ncap_per_window = 10000\n"
        f'[alerts.webhook]\nenabled = true\nurl = "{hook}"\n'
        f'[group]\ndir = "group"\npartitions = {partitions}\npoll_s = {POLL_S}\n'
    )
    return path


class Webhook:
    """Local HTTP sink: every alert notification the members POST."""

    def __init__(self) -> None:
        self.received: queue.SimpleQueue[dict] = queue.SimpleQueue()
        self.all: list[dict] = []
        sink = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                sink.put(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def alerts(self) -> dict[str, list[str]]:
        """Station -> incident ids of every alert so far (one notification may name several)."""
        while not self.received.empty():
            self.all.append(self.received.get())
        out: dict[str, list[str]] = {}
        for n in self.all:
            if n["kind"] in ("alert", "alert_group"):
                for inc in n["incident_ids"]:
                    out.setdefault(inc.split(":", 1)[0], []).append(inc)
        return out

    def codes(self) -> dict[str, list[str]]:
        """Station -> acknowledgement codes of its alerts."""
        self.alerts()
        out: dict[str, list[str]] = {}
        for n in self.all:
            if n["kind"] == "alert":
                out.setdefault(n["station"], []).extend(n["codes"])
        return out

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


class Fleet:
    """One MQTT client publishing a QoS 1 reading for every live station every 0.25 s."""

    def __init__(self, port: int, stations: list[tuple[str, str]]) -> None:
        self.live = dict(stations)  # station -> commune
        self.sent: list[tuple[str, int, int]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id="grp-fleet")
        self.client.max_inflight_messages_set(1000)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.thread = threading.Thread(target=self._run, name="fleet", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        seq = 0
        while not self._stop.wait(0.25):
            seq += 1
            ts = int(time.time() * 1000)
            with self._lock:
                for sid, commune in list(self.live.items()):
                    msg = Telemetry(station=sid, session=1, seq=seq, ts=ts, agent_uptime_s=seq)
                    topic = station_topic(PROVINCE, commune, sid, Kind.TELEMETRY)
                    self.client.publish(topic, to_json(msg), qos=1)
                    self.sent.append((sid, seq, ts))

    def silence(self, stations: list[str]) -> None:
        with self._lock:
            for sid in stations:
                del self.live[sid]

    def sent_so_far(self) -> list[tuple[str, int, int]]:
        with self._lock:
            return list(self.sent)

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(10)
        self.client.disconnect()
        self.client.loop_stop()


class Member:
    """``loaxa collector`` with ``[group]``: one member process."""

    def __init__(self, config: Path, name: str) -> None:
        self.config, self.name = config, name
        with open(config.parent / f"{name}.log", "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "loaxa.cli", "collector", "--config", str(config)],
                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def status(self) -> dict:
        for path in (self.config.parent / "group").glob("status-*.json"):
            try:
                data = json.loads(path.read_text())
            except (OSError, ValueError):
                continue  # replaced under us: read again next time
            if data.get("pid") == self.proc.pid:
                return data
        return {}

    def partitions(self, connected: bool = True) -> set[int]:
        parts = self.status().get("partitions", {})
        return {int(k) for k, p in parts.items() if p["connected"] or not connected}

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(60)


def incidents(tmp: Path) -> dict[str, list[str]]:
    """Station -> incident ids, over every partition's state store."""
    out: dict[str, list[str]] = {}
    for path in sorted(tmp.glob("state-p*.sqlite")):
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            for sid, inc in db.execute("SELECT station, id FROM incidents"):
                out.setdefault(sid, []).append(inc)
        finally:
            db.close()
    return out


def saved_alert_of(tmp: Path, sid: str) -> bool:
    """Whether some partition's router state file (saved at its alert tick) holds ``sid``."""
    for path in tmp.glob("state-p*.alerts.json"):
        try:
            if sid in path.read_text():
                return True
        except OSError:
            continue
    return False
