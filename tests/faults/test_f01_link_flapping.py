"""Fault case 1: the link between agents and the broker flaps (TCP resets, stalls, slow
periods, refused connections) while three agents report. Every reading must reach InfluxDB
exactly once by (station, seq, ts); the end-to-end delay p50/p95/p99 is recorded."""

from __future__ import annotations

import random
import threading
import time

import pytest

from loaxa.sim.tcp_proxy import Mode
from tests.faults import report
from tests.faults.fixtures_a import ArrivalWatch, start_collector
from tests.faults.stack import STATIONS, Key, make_agent, publish_reading, stored_keys
from tests.servers import wait_until
from tests.test_agent_publisher import Recorder

FAULTS = ("reset", "stall", "slow", "cut")


def flap(proxy, stop: threading.Event, rng: random.Random, log: list[str]) -> None:
    """Cycle through the faults, each for 0.3-1.5 s, with normal periods in between."""
    while not stop.is_set():
        fault = rng.choice(FAULTS)
        log.append(fault)
        if fault == "reset":
            proxy.reset()
        else:
            proxy.set_mode(Mode[fault.upper()], delay_s=0.05)
            if fault == "cut":
                proxy.reset()
        stop.wait(rng.uniform(0.3, 1.5))
        proxy.set_mode(Mode.PASS)
        stop.wait(rng.uniform(0.2, 0.8))
    proxy.set_mode(Mode.PASS)


@pytest.mark.parametrize(
    "readings",
    [pytest.param(60, id="fast"), pytest.param(600, id="slow", marks=pytest.mark.slow)],
)
def test_link_flapping_exactly_once(
    no_leaked_threads, readings, tmp_path, mosquitto, influxdb, broker_proxy, collector
):
    start_collector(collector)
    tap = Recorder(mosquitto.port, "f01-tap")  # counts deliveries (duplicates) at the broker
    agents = [make_agent(tmp_path, s, broker_proxy.port) for s in STATIONS]
    watch = ArrivalWatch(influxdb).start()
    stop, faults = threading.Event(), []
    flapper = threading.Thread(target=flap, args=(broker_proxy, stop, random.Random(1), faults))
    sent: list[Key] = []
    try:
        for agent in agents:
            agent.start()
        flapper.start()
        for n in range(readings):
            sent += [publish_reading(agent, n) for agent in agents]
            time.sleep(0.05)  # the agents' sampling pace (not a wait for a condition)
        stop.set()
        flapper.join()
        t_heal = time.monotonic()
        wait_until(lambda: set(stored_keys(influxdb)) >= set(sent), 90, what="every reading")
        heal_s = time.monotonic() - t_heal
    finally:
        stop.set()
        watch.stop()
        for agent in agents:
            agent.stop()
            agent.queue.close()
        tap.close()
    keys = stored_keys(influxdb)
    assert len(keys) == len(set(keys)) == len(sent)  # exactly once: no extra point
    assert set(keys) == set(sent)
    delivered = [(m["station"], m["seq"], m["ts"]) for m in tap.of("telemetry")]
    p50, p95, p99 = report.percentiles(watch.delays_s(), 50, 95, 99)
    report.record(
        f"f01 link flapping ({len(sent)} readings)",
        sent=len(sent), stored=len(set(keys)), duplicated=len(delivered) - len(set(delivered)),
        lost=len(set(sent) - set(keys)), faults=len(faults), resets=broker_proxy.resets,
        recover_s=heal_s, p50_s=p50, p95_s=p95, p99_s=p99,
        note="delay = first seen in InfluxDB (polled every 0.2 s) - reading ts",
    )  # fmt: skip
