"""Fault case 8: seconds from a fault to the alert leaving the collector (the technician's
webhook receives it), for a real agent process (``python -m agent``, SimulatedMcu on a pty,
through the TcpProxy) and the real collector. Scenarios: broadcast silence in a window,
graceful agent stop, agent crash (kill -9), silent power cut (half-open TCP: the proxy stalls),
serial link to the MCU dead while MQTT is up. Each latency is recorded beside its bound
(docs/FAULTS.md); only "an alert came" is asserted, never the seconds."""

from __future__ import annotations

import json
import queue
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from loaxa.sim.mcu import SimulatedMcu
from loaxa.sim.tcp_proxy import Mode
from tests.faults import report
from tests.faults.fixtures_a import start_collector
from tests.faults.stack import DB, INVENTORY, CollectorProcess
from tests.servers import free_port, wait_until
from tests.test_agent_e2e import AgentProcess

SID, COMMUNE = "cb-01290", "01290"  # schedule fm-24h: always inside a broadcast window
KEEPALIVE_S, INTERVAL_S, DOWN_AFTER, DAMPING_S, SILENCE_MIN = 5, 1, 3, 2, 0.05
HEALTH_TICK_S, ALERT_TICK_S, GROUP_S = 0.5, 0.5, 1


def bound_s(scenario: str) -> float:
    """docs/FAULTS.md "Detection bounds", with this test's settings."""
    ticks = HEALTH_TICK_S + ALERT_TICK_S + GROUP_S
    silence_rule = INTERVAL_S * DOWN_AFTER
    return {
        "silence": SILENCE_MIN * 60 + 2 * INTERVAL_S + ticks,
        "graceful": DAMPING_S + ticks,
        "crash": DAMPING_S + ticks,
        "half_open": min(1.5 * KEEPALIVE_S, silence_rule) + 5 + DAMPING_S + ticks,
        "serial_dead": INTERVAL_S + ticks,
    }[scenario]


class Webhook:
    def __init__(self) -> None:
        self.received: queue.Queue[tuple[float, dict]] = queue.Queue()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.received.put((time.monotonic(), json.loads(body)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def next(self, kinds: set[str], timeout: float) -> tuple[float, dict] | None:
        """The next notification of one of ``kinds`` for our station (others are skipped)."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                at, doc = self.received.get(timeout=left)
            except queue.Empty:
                return None
            if doc.get("kind") in kinds and doc.get("station") == SID:
                return at, doc
        return None

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def write_agent_config(tmp, port: int, device: str):
    path = tmp / "agent.toml"
    path.write_text(
        f'[station]\nid = "{SID}"\nprovince = "cao-bang"\ncommune = "{COMMUNE}"\n'
        f'[mqtt]\nhost = "127.0.0.1"\nport = {port}\nkeepalive_s = {KEEPALIVE_S}\n'
        "retry_min_s = 0.2\nretry_max_s = 1.0\n"
        f'[controller]\nurl = "{device}"\npoll_interval_s = 0.3\nresponse_timeout_ms = 100\n'
        "retries = 1\nreopen_interval_s = 0.3\n"
        f'[telemetry]\ninterval_s = {INTERVAL_S}\n[state]\ndir = "{tmp / "state"}"\n'
    )
    return path


def write_config(tmp, mosquitto_port: int, influx_url: str, http_port: int, hook: str):
    fast = (
        INVENTORY.read_text(encoding="utf-8")
        .replace("telemetry_interval_s = 60", f"telemetry_interval_s = {INTERVAL_S}")
        .replace("down_after_intervals = 3", f"down_after_intervals = {DOWN_AFTER}")
        .replace("damping_s = 60", f"damping_s = {DAMPING_S}")
        .replace("silence_after_min = 5 ", f"silence_after_min = {SILENCE_MIN} ")
    )
    inventory = tmp / "inventory.toml"
    inventory.write_text(fast, encoding="utf-8")
    path = tmp / "collector.toml"
    path.write_text(
        f'inventory = "{inventory}"\n'
        f'[daemon]\nstate_db = "state.sqlite"\nhealth_tick_s = {HEALTH_TICK_S}\n'
        f"alert_tick_s = {ALERT_TICK_S}\n"
        f'[mqtt]\nport = {mosquitto_port}\nclient_id = "collector-f08"\n'
        f'[influx]\nurl = "{influx_url}"\ndb = "{DB}"\ncreate_database = true\n'
        '[spool]\npath = "spool.sqlite"\ndead_letter_path = "dead.jsonl"\n'
        f"[http]\nport = {http_port}\n"
        '[alerts]\nchannel_order = ["webhook"]\ncopy_to = []\n'
        f"[alerts.routing]\ngroup_window_s = {GROUP_S}\ncap_per_window = 1000\n"
        f'[alerts.webhook]\nenabled = true\nurl = "{hook}"\n'
    )
    return path


@pytest.fixture
def rig(tmp_path, mosquitto, influxdb, broker_proxy):
    hook = Webhook()
    mcu = SimulatedMcu().start()
    http_port = free_port()
    config = write_config(tmp_path, mosquitto.port, influxdb.url, http_port, hook.url)
    collector = CollectorProcess(config, http_port)
    agent = AgentProcess(write_agent_config(tmp_path, broker_proxy.port, mcu.path))
    yield collector, agent, mcu, hook
    agent.cleanup()
    collector.cleanup()
    mcu.stop()
    hook.close()


SLOW = pytest.mark.slow
SCENARIOS = [
    pytest.param("crash", id="crash", marks=SLOW),
    pytest.param("half_open", id="half_open"),
    pytest.param("silence", id="silence", marks=SLOW),
    pytest.param("graceful", id="graceful", marks=SLOW),
    pytest.param("serial_dead", id="serial_dead", marks=SLOW),
]


def inject(scenario: str, agent: AgentProcess, mcu: SimulatedMcu, proxy) -> None:
    if scenario == "silence":
        mcu.set_readings(audio_rms_dbfs=-80.0, audio_peak_dbfs=-70.0)
    elif scenario == "graceful":
        agent.signal(signal.SIGTERM)
    elif scenario == "crash":
        agent.signal(signal.SIGKILL)
    elif scenario == "half_open":
        proxy.set_mode(Mode.STALL)
    elif scenario == "serial_dead":
        mcu.vanish()


def repair(scenario: str, agent: AgentProcess, mcu: SimulatedMcu, proxy) -> None:
    if scenario == "silence":
        mcu.set_readings(audio_rms_dbfs=-18.0, audio_peak_dbfs=-6.0)
    elif scenario in ("graceful", "crash"):
        agent.start()
    elif scenario == "half_open":
        proxy.set_mode(Mode.PASS)
        proxy.reset()
    elif scenario == "serial_dead":
        mcu.reappear()


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_detection_latency(no_leaked_threads, scenario, rig, broker_proxy):
    collector, agent, mcu, hook = rig
    start_collector(collector)
    agent.start()
    # Let the station be seen operating for a while, then inject the fault.
    wait_until(lambda: "connected to broker" in agent.text(), 60, what="agent connected")
    wait_until(lambda: collector.metric('loaxa_ingest_messages_total{kind="telemetry"}') >= 3,
               60, interval=0.2, what="station reporting")  # fmt: skip
    t0 = time.monotonic()
    inject(scenario, agent, mcu, broker_proxy)
    got = hook.next({"alert", "alert_group", "info"}, timeout=bound_s(scenario) + 30)
    detect = None if got is None else got[0] - t0
    report.record(
        f"f08 detect {scenario}", detect_s=detect, bound_s=bound_s(scenario),
        alert=None if got is None else got[1].get("details", {}).get("state", got[1]["kind"]),
        note="no alert" if got is None else "",
    )  # fmt: skip
    repair(scenario, agent, mcu, broker_proxy)
    assert got is not None, f"{scenario}: no alert within {bound_s(scenario) + 30:.0f} s"
