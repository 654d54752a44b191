"""Real local peers for the collector scenario (tests/test_collector_scenario.py): an SMTP sink
(aiosmtpd), a webhook (http.server), the MQTT alert feed, and scripted station agents that
publish ``loaxa.payloads`` telemetry at QoS 1 with the times they choose.
"""

from __future__ import annotations

import email
import email.policy
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import paho.mqtt.client as paho
from aiosmtpd.controller import Controller
from paho.mqtt.enums import CallbackAPIVersion

from loaxa import topics
from loaxa.payloads import Audio, Power, Telemetry, to_json
from tests.servers import free_port, wait_until

LOUD, QUIET = -20.0, -70.0  # dBFS; the silence threshold is -50


class SmtpSink:
    """aiosmtpd on a free loopback port, plain SMTP (``security = "none"``)."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], email.message.EmailMessage]] = []
        self.port = free_port()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server, session, envelope) -> str:
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append((list(envelope.rcpt_tos), msg))
        return "250 OK"

    def start(self) -> SmtpSink:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()


class WebhookSink:
    """A local HTTP server that keeps every JSON body POSTed to it."""

    def __init__(self) -> None:
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append(json.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> WebhookSink:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


class AlertFeed:
    """Subscribes to the collector's MQTT alert feed and keeps each notification (JSON)."""

    def __init__(self, port: int, province: str) -> None:
        self.received: list[dict] = []
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id="scenario-feed")
        self.client.on_message = lambda c, u, m: self.received.append(json.loads(m.payload))
        self.client.on_connect = lambda c, *a: c.subscribe(topics.alert_subscription(province), 1)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        wait_until(self.client.is_connected, 10, what="alert feed connected")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class ScriptedFleet:
    """Scripted station agents on one MQTT connection. Every ``period_s`` each running station
    publishes a Telemetry built from its profile (audio level, power); changes take effect at
    once with one message whose time the call returns, so a test knows the exact payload time
    of every change. Times strictly increase per station."""

    def __init__(
        self, port: int, province: str, communes: dict[str, str], period_s: float = 0.4
    ) -> None:
        self.province, self.communes, self.period_s = province, communes, period_s
        self.profile = {
            sid: {"rms": LOUD, "on_battery": False, "battery_v": None} for sid in communes
        }
        self.running: set[str] = set()
        self.last_ts: dict[str, int] = {}
        self.seq = dict.fromkeys(communes, 0)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id="scenario-agents")
        self.client.max_inflight_messages_set(200)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self._thread = threading.Thread(target=self._run, name="scripted-fleet", daemon=True)

    def start(self, stations: list[str]) -> ScriptedFleet:
        with self._lock:
            for sid in stations:
                self.running.add(sid)
                self._send(sid)
        self._thread.start()
        return self

    def _send(self, sid: str) -> int:
        """Publish one reading now (caller holds the lock); returns its payload time."""
        ts = max(time.time_ns() // 1_000_000, self.last_ts.get(sid, 0) + 1)
        self.seq[sid] += 1
        p = self.profile[sid]
        reading = Telemetry(
            station=sid,
            session=1,
            seq=self.seq[sid],
            ts=ts,
            agent_uptime_s=self.seq[sid],
            audio=Audio(rms_dbfs=p["rms"], source="pcm"),
            power=Power(
                on_battery=p["on_battery"],
                battery_v=p["battery_v"],
                mains_v=None if p["on_battery"] else 225.0,
            ),
        )
        topic = topics.station_topic(self.province, self.communes[sid], sid, topics.Kind.TELEMETRY)
        self.client.publish(topic, to_json(reading), qos=1)
        self.last_ts[sid] = ts
        return ts

    def change(self, sid: str, **profile: object) -> int:
        """New readings from now on; returns the time of the first one."""
        with self._lock:
            self.profile[sid].update(profile)
            self.running.add(sid)
            return self._send(sid)

    def stop(self, sid: str) -> int:
        """The station falls silent on the network; returns the time of its last reading."""
        with self._lock:
            self.running.discard(sid)
            return self.last_ts[sid]

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            with self._lock:
                for sid in sorted(self.running):
                    self._send(sid)

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
        self.client.disconnect()
        self.client.loop_stop()
