"""Case 15: soak. 100-150 in-process agents (real Publishers) report once a second through
real Mosquitto to the collector running as its own process (``loaxa collector``), into real
InfluxDB, while the link misbehaves: each second 1 % of the agents lose their connection (a
client-id takeover: the broker drops them, they reconnect with a new session and resend), and
every 15 s the broker is stopped for 2 s (an outage: everybody backs off with jitter and
backfills).

Duration: ``LOAXA_SOAK_S`` seconds (default 30 in ``make test``; ``make faults`` runs the slow
variant, default 600 s, and ``LOAXA_SOAK_S=3600`` gives the hour of issue 5).

Recorded: RSS, open file descriptors and threads of the collector process and of the agents'
process (this test process), at the start and at the end, both measured when every agent is
connected and its queue empty. Asserted: nothing lost (every reading stored, by key), and file
descriptors and threads do not grow (bounded growth); memory is reported, not asserted.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from agent.mqtt_config import MqttConfig, StationConfig
from agent.publisher import Publisher
from agent.queue import OfflineQueue
from agent.state import AgentState
from loaxa.topics import Kind
from tests.faults.collector_rig import ROOT, fleet_inventory, now_ms, rows, write_config
from tests.faults.report import record
from tests.faults.test_f09_session_takeover import _take_over
from tests.servers import wait_until

CASES = [  # (agents, seconds, broker restarts)
    pytest.param(100, int(os.environ.get("LOAXA_SOAK_S", "30")), True, id="fast"),
    pytest.param(
        150, int(os.environ.get("LOAXA_SOAK_S", "600")), True, id="slow", marks=pytest.mark.slow
    ),
]  # at most ~150 in-process agents: paho's select() cannot watch a descriptor >= 1024


def usage(pid: int | str) -> dict[str, int]:
    """RSS (KiB), open fds and threads of a process, from /proc."""
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    fields = dict(line.split(":", 1) for line in status if ":" in line)
    return {
        "rss_kib": int(fields["VmRSS"].split()[0]),
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
        "threads": int(fields["Threads"]),
    }


class Chaos(threading.Thread):
    """1 % of the agents dropped each second; the broker down 2 s in every 15 s."""

    def __init__(self, agents: list[Publisher], broker, restarts: bool) -> None:
        super().__init__(name="soak-chaos", daemon=True)
        self.agents, self.broker, self.restarts = agents, broker, restarts
        self.stop_event = threading.Event()
        self.takeovers = self.outages = 0
        self.rng = random.Random(15)

    def run(self) -> None:
        tick = 0
        while not self.stop_event.wait(1.0):
            tick += 1
            if self.restarts and tick % 15 == 0:
                self.broker.stop()
                self.outages += 1
                self.stop_event.wait(2.0)
                self.broker.start()
                continue
            for pub in self.rng.sample(self.agents, max(1, len(self.agents) // 100)):
                if pub.connected:
                    try:
                        _take_over(self.broker.port, pub.client_id)
                        self.takeovers += 1
                    except (OSError, TimeoutError):
                        pass  # the broker is coming back: next second


def _quiet(agents: list[Publisher], timeout: float) -> None:
    wait_until(
        lambda: all(p.connected and len(p.queue) == 0 for p in agents),
        timeout,
        what="every agent connected with an empty queue",
    )


@pytest.mark.parametrize(("stations", "duration_s", "restarts"), CASES)
def test_soak(tmp_path, mosquitto, influxdb, stations, duration_s, restarts):
    inventory, fleet = fleet_inventory(tmp_path, stations)
    config = write_config(tmp_path, mosquitto.port, influxdb.url, inventory=inventory)
    log = open(tmp_path / "collector.log", "ab")  # noqa: SIM115 (closed in finally)
    collector = subprocess.Popen(
        [sys.executable, "-m", "loaxa.cli", "collector", "--config", str(config)],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    cfg = MqttConfig(host="127.0.0.1", port=mosquitto.port, keepalive_s=10, retry_min_s=0.5,
                     retry_max_s=2.0)  # fmt: skip
    agents = []
    for sid, commune in fleet:
        folder = tmp_path / "agents" / sid
        queue = OfflineQueue(folder / "q.sqlite", 10_000_000, synchronous="NORMAL",
                             reserve_bytes=0)  # fmt: skip
        station = StationConfig(id=sid, province="cao-bang", commune=commune)
        agents.append(Publisher(station, cfg, queue, AgentState(folder / "state")))
    chaos = Chaos(agents, mosquitto, restarts)
    sent = 0
    try:
        collector_log = tmp_path / "collector.log"
        wait_until(lambda: "connected to 127.0.0.1" in collector_log.read_text(), 60,
                   what="collector subscribed")  # fmt: skip
        for pub in agents:
            pub.start()
        _quiet(agents, 180)
        start = {"collector": usage(collector.pid), "agents": usage("self")}
        chaos.start()
        t0 = time.monotonic()
        second = 0
        base = now_ms()
        while time.monotonic() - t0 < duration_s:  # one reading a second from every agent
            second += 1
            for i, pub in enumerate(agents):
                pub.publish(Kind.TELEMETRY, {"agent_uptime_s": second}, base + second * 1000 + i)
                sent += 1
            wait_until(lambda s=second: time.monotonic() - t0 >= s, 5, interval=0.05,
                       what="the next second")  # fmt: skip
        chaos.stop_event.set()
        chaos.join(10)
        wait_until(lambda: mosquitto.running, 10, what="broker up")
        _quiet(agents, 120)
        query = "SELECT count(seq) FROM telemetry WHERE station =~ /^cb-f/"
        count = lambda: (rows(influxdb, query) or [{"count": 0}])[0]["count"]  # noqa: E731
        with contextlib.suppress(TimeoutError):  # recorded below, then asserted
            wait_until(lambda: count() >= sent, 120, what="every reading stored")
        end = {"collector": usage(collector.pid), "agents": usage("self")}
        stored = count()
    finally:
        chaos.stop_event.set()
        for pub in agents:
            pub.stop(timeout=1)
            pub.queue.close()
        collector.send_signal(signal.SIGTERM)
        collector.wait(60)
        log.close()
    for who in ("collector", "agents"):  # one row per process, the same columns
        record(
            f"f15 soak ({stations} agents, {duration_s} s): {who} process",
            sent=sent, stored=stored, lost=sent - stored, takeovers=chaos.takeovers,
            outages=chaos.outages,
            **{f"{k}_{when}": v[who][k] for k in ("rss_kib", "fds", "threads")
               for when, v in (("start", start), ("end", end))},
        )  # fmt: skip
    assert stored == sent
    for who in ("collector", "agents"):
        assert end[who]["fds"] <= start[who]["fds"] + 10, (who, start, end)
        assert end[who]["threads"] <= start[who]["threads"] + 10, (who, start, end)
