"""Health -> alerts through the daemon: a station falls silent, its technician's webhook gets
the alert with a code, and `loaxa ack CODE` (MQTT) acknowledges it in the running daemon."""

from __future__ import annotations

import json
import queue
import signal
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from loaxa.cli import main
from tests.live_inventory import live_text
from tests.servers import free_port, wait_until
from tests.test_collector_daemon import (
    DB,
    TOPIC,
    Daemon,
    Publisher,
    _metrics_or_empty,
    healthz,
    telemetry,
)


@pytest.fixture
def webhook():
    received: queue.Queue = queue.Queue()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.put(json.loads(body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def collector(tmp_path, mosquitto, influxdb, webhook):
    url, _ = webhook
    fast = (
        live_text()  # the example without its dated maintenance of this very station
        .replace("telemetry_interval_s = 60", "telemetry_interval_s = 1")
        .replace("down_after_intervals = 3", "down_after_intervals = 2")
        .replace("damping_s = 60", "damping_s = 0")
    )
    inventory = tmp_path / "inventory.toml"
    inventory.write_text(fast, encoding="utf-8")
    http_port = free_port()
    path = tmp_path / "collector.toml"
    path.write_text(
        f'inventory = "{inventory}"\n'
        '[daemon]\nstate_db = "state.sqlite"\nhealth_tick_s = 0.5\nalert_tick_s = 1\n'
        f'[mqtt]\nport = {mosquitto.port}\nclient_id = "collector-alerts"\n'
        f'[influx]\nurl = "{influxdb.url}"\ndb = "{DB}"\ncreate_database = true\n'
        '[spool]\npath = "spool.sqlite"\ndead_letter_path = "dead.jsonl"\n'
        f"[http]\nport = {http_port}\n"
        '[alerts]\nchannel_order = ["webhook"]\ncopy_to = []\n'
        f'[alerts.webhook]\nenabled = true\nurl = "{url}"\n'
        "[alerts.mqtt]\nenabled = true\n"
    )
    daemon = Daemon(path, tmp_path / "collector.log")
    daemon.http_port = http_port
    daemon.start()
    yield daemon
    if daemon.running:
        daemon.signal(signal.SIGKILL)


def test_silent_station_alerted_then_acknowledged(collector, mosquitto, webhook):
    _, received = webhook
    wait_until(lambda: (healthz(collector.http_port) or {}).get("ok"), 30, what="collector up")
    pub = Publisher(mosquitto.port)
    pub.send(TOPIC, telemetry(1)).wait_for_publish(10)
    pub.close()  # and then nothing: the station is down after 2 x 1 s

    alert = received.get(timeout=30)
    assert alert["station"] == "cb-01267"
    assert alert["recipient"]["id"] == "tech-nong"
    (code,) = alert["codes"]

    assert main(["ack", code, "--config", str(collector.config), "--by", "Trực ban"]) == 0
    wait_until(
        lambda: (
            'loaxa_alert_router_total{counter="acknowledged"} 1.0'
            in _metrics_or_empty(collector.http_port)  # a scrape timing out must not raise
        ),
        30,
        what="acknowledged in the daemon",
    )
    assert collector.signal(signal.SIGTERM) == 0
