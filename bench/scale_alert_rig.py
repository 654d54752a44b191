"""The rig of the alert-latency benchmark: an inventory where each station has its own
technician, scripted stations with injectable faults, and the sinks that timestamp arrivals.

Faults (each station gets at most one; injection time ``injected`` is wall-clock ms):

- ``stop``: the station sends nothing more (dead controller, cut link): DOWN after
  ``down_after_intervals`` x interval from its last reading, incident after ``damping_s``.
  Injected = the moment of its last reading.
- ``silent``: audio at -72 dBFS while on air in an always-on window: SILENT after
  ``silence_after_min``. Injected = the first silent reading.
- ``battery``: a ``power_lost`` event and readings on battery below ``battery_low_v``:
  BATTERY_WARNING. Injected = the event.

One technician per station (own commune, own e-mail address), so storm grouping
(``alerts.routing.group_window_s`` per person) never holds an alert back and the recipient
names the station.
"""

from __future__ import annotations

import json
import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from aiosmtpd.controller import Controller
from paho.mqtt.enums import CallbackAPIVersion

from loaxa.payloads import Audio, Cluster, ClusterKind, Event, EventCode, Power, Telemetry, to_json
from loaxa.sim.inventory_gen import DEFAULTS, write_toml
from loaxa.topics import Kind, alert_subscription, station_topic

PROVINCE = "alert-bench"
FAULTS = ("stop", "silent", "battery")


def email_of(i: int) -> str:
    return f"tech{i:04d}@bench.invalid"


def write_inventory(path: Path, stations: int, thresholds: dict[str, Any]) -> list[str]:
    ids = [f"al-{i:04d}" for i in range(stations)]
    inv = {
        "province": {"code": "98", "slug": PROVINCE, "name": "Alert bench", "department": "Sở"},
        "defaults": {**DEFAULTS, **thresholds},
        "schedules": [{"id": "always", "always": True}],
        "technicians": [
            {"id": f"tech-{i:04d}", "name": f"KTV {i}", "email": email_of(i)}
            for i in range(stations)
        ],
        "communes": [
            {
                "code": f"{i + 1:05d}",
                "name": f"Xã {i + 1}",
                "schedule": "always",
                "technicians": [f"tech-{i:04d}"],
            }
            for i in range(stations)
        ],
        "stations": [
            {
                "id": sid,
                "commune": f"{i + 1:05d}",
                "name": f"Đài {i}",
                "clusters": ["wired"],
                "lat": 21.0,
                "lon": 105.8,
                "position": "demo",
            }
            for i, sid in enumerate(ids)
        ],
    }
    write_toml(inv, path, how="(bench_alert_latency)")
    return ids


@dataclass
class ScriptedStation:
    sid: str
    commune: str
    index: int
    phase_s: float
    fault: str | None = None
    injected_ms: int | None = None
    seq: int = 0

    def reading(self, ts: int) -> tuple[str, bytes]:
        silent = self.fault == "silent"
        battery = self.fault == "battery"
        t = Telemetry(
            station=self.sid, session=1, seq=self.seq, ts=ts, agent_uptime_s=100 + self.seq,
            amp="on",
            audio=Audio(rms_dbfs=-72.0 if silent else -20.0, peak_dbfs=-60.0 if silent else -3.0,
                        source="pcm"),
            power=Power(mains_v=None if battery else 225.0,
                        battery_v=11.0 if battery else 12.8, on_battery=battery),
            clusters=[Cluster(id=1, kind=ClusterKind.WIRED, relay_on=True)],
        )  # fmt: skip
        self.seq += 1
        return station_topic(PROVINCE, self.commune, self.sid, Kind.TELEMETRY), to_json(t)

    def power_event(self, ts: int) -> tuple[str, bytes]:
        e = Event(station=self.sid, session=1, seq=self.seq, ts=ts, code=EventCode.POWER_LOST)
        self.seq += 1
        return station_topic(PROVINCE, self.commune, self.sid, Kind.EVENT), to_json(e)


@dataclass
class ScriptedFleet:
    """Every station reports each ``interval_s`` at its own phase, from one MQTT connection
    (the collector judges each station from its payloads, not from the connection)."""

    port: int
    ids: list[str]
    interval_s: float
    stations: list[ScriptedStation] = field(init=False)

    def __post_init__(self) -> None:
        rng = random.Random(3)
        self.stations = [
            ScriptedStation(sid, f"{i + 1:05d}", i, rng.uniform(0, self.interval_s))
            for i, sid in enumerate(self.ids)
        ]
        self.pending: dict[int, str] = {}  # station index -> fault to inject at its next turn
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id="alert-bench-fleet")
        self.client.max_inflight_messages_set(200)
        self.client.connect("127.0.0.1", self.port)
        self.client.loop_start()
        self._thread = threading.Thread(target=self._run, name="scripted-fleet", daemon=True)

    def start(self) -> ScriptedFleet:
        self._t0 = time.time()
        self._thread.start()
        return self

    def inject(self, index: int, fault: str) -> None:
        with self._lock:
            self.pending[index] = fault

    def _run(self) -> None:
        k = 0
        while not self._stop.is_set():
            turn = [(self._t0 + k * self.interval_s + s.phase_s, s) for s in self.stations]
            for due, st in sorted(turn, key=lambda x: x[0]):
                if self._stop.wait(max(0.0, due - time.time())):
                    return
                self._turn(st)
            k += 1

    def _turn(self, st: ScriptedStation) -> None:
        with self._lock:
            fault = self.pending.pop(st.index, None)
        now = int(time.time() * 1000)
        if st.fault == "stop":
            return
        if fault:
            st.fault, st.injected_ms = fault, now
            if fault == "battery":
                self.client.publish(*st.power_event(now), qos=1)
        self.client.publish(*st.reading(now), qos=1)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self.client.disconnect()
        self.client.loop_stop()


class Arrivals:
    """Timestamps (wall ms) of alerts reaching the SMTP sink and the MQTT alert feed."""

    def __init__(self, mqtt_port: int, smtp_port: int) -> None:
        self.smtp: list[tuple[int, list[str], bytes]] = []
        self.feed: list[tuple[int, dict]] = []
        arrivals = self

        class Handler:
            async def handle_DATA(self, server, session, envelope) -> str:
                arrivals.smtp.append((int(time.time() * 1000), list(envelope.rcpt_tos),
                                      envelope.content))  # fmt: skip
                return "250 OK"

        self.smtp_server = Controller(Handler(), hostname="127.0.0.1", port=smtp_port)
        self.smtp_port = smtp_port
        self.feed_client = paho.Client(CallbackAPIVersion.VERSION2, client_id="alert-bench-feed")
        self.feed_client.on_message = self._on_feed
        self.feed_client.connect("127.0.0.1", mqtt_port)
        self.feed_client.subscribe(alert_subscription(PROVINCE), qos=1)
        self.feed_client.loop_start()

    def _on_feed(self, client, userdata, msg) -> None:
        self.feed.append((int(time.time() * 1000), json.loads(msg.payload)))

    def start(self) -> Arrivals:
        self.smtp_server.start()
        return self

    def stop(self) -> None:
        self.smtp_server.stop()
        self.feed_client.disconnect()
        self.feed_client.loop_stop()
