"""Fault case 4: Mosquitto is killed -9 and restarted (persistence on) while three agents
report and the collector stores. Agents resend what the broker never acknowledged, the
collector resumes its persistent session: 0 readings lost end to end, none stored twice."""

from __future__ import annotations

import signal
import threading
import time

import pytest

from tests.faults import report
from tests.faults.fixtures_a import start_collector
from tests.faults.stack import (
    STATIONS,
    CollectorProcess,
    Key,
    make_agent,
    publish_reading,
    stored_keys,
    write_collector_config,
)
from tests.servers import Mosquitto, free_port, wait_until


def wait_saved(broker: Mosquitto) -> None:
    """Wait for the broker to save its store (sessions included) after this moment: a
    collector's session is days old in production, not milliseconds."""
    now, store = time.time(), broker.workdir / "mosquitto.db"
    wait_until(lambda: store.exists() and store.stat().st_mtime > now, 30, what="broker saved")


def produce(agents, stop: threading.Event, sent: list[Key]) -> None:
    n = 0
    while not stop.is_set():
        sent += [publish_reading(agent, n) for agent in agents]
        n += 1
        stop.wait(0.02)  # the agents' sampling pace


@pytest.mark.parametrize(
    "kills", [pytest.param(2, id="fast"), pytest.param(10, id="slow", marks=pytest.mark.slow)]
)
def test_broker_kill_9_loses_nothing(
    no_leaked_threads, kills, tmp_path, mosquitto, influxdb, collector
):
    start_collector(collector)
    wait_saved(mosquitto)
    agents = [make_agent(tmp_path, s, mosquitto.port) for s in STATIONS]
    sent: list[Key] = []
    stop = threading.Event()
    producer = threading.Thread(target=produce, args=(agents, stop, sent))
    recover: list[float] = []
    try:
        for agent in agents:
            agent.start()
        producer.start()
        for k in range(kills):
            wait_until(lambda: all(a.connected for a in agents), 30, what="agents connected")
            wait_until(lambda k=k: len(stored_keys(influxdb)) > 30 * (k + 1), 30, interval=0.1,
                       what="stream flowing")  # fmt: skip
            mosquitto.kill()
            wait_until(lambda: not any(a.connected for a in agents), 30, what="agents see it")
            mosquitto.start()
            t0 = time.monotonic()
            wait_until(lambda: all(a.connected for a in agents) and collector.broker_connected(),
                       30, what="everyone back")  # fmt: skip
            recover.append(time.monotonic() - t0)
        stop.set()
        producer.join()
        wait_until(lambda: all(len(a.queue) == 0 for a in agents), 60, what="agent queues empty")
        want = set(sent)
        wait_until(lambda: set(stored_keys(influxdb)) >= want, 60, interval=0.2, what="all stored")
    finally:
        stop.set()
        for agent in agents:
            agent.stop()
            agent.queue.close()
    keys = stored_keys(influxdb)
    lost = len(set(sent) - set(keys))
    report.record(
        f"f04 broker kill -9 x{kills} ({len(sent)} readings)",
        sent=len(sent), stored=len(set(keys)), lost=lost, recover_s=max(recover),
        note="recover_s: broker restart -> agents and collector reconnected (worst)",
    )  # fmt: skip
    assert lost == 0 and len(keys) == len(set(keys)) == len(sent)


@pytest.mark.parametrize(
    "autosave",
    [
        pytest.param("", id="interval-1s", marks=pytest.mark.slow),
        pytest.param("autosave_on_changes true", id="every-change", marks=pytest.mark.slow),
    ],
)
def test_broker_kill_9_while_collector_away(
    no_leaked_threads, autosave, tmp_path, tmp_path_factory, influxdb
):
    """The harder variant: the collector is away, so the readings the broker acknowledged live
    only in its session queue (memory, saved every ``autosave_interval``) when it is killed.
    Agents resend only what was never acknowledged, so the loss is bounded by what the broker
    acknowledged since its last save: measured and recorded here (docs/FAULTS.md)."""
    broker = Mosquitto(tmp_path_factory.mktemp("broker"), extra=autosave).start()
    http_port = free_port()
    collector = CollectorProcess(
        write_collector_config(tmp_path, broker.port, influxdb.url, http_port), http_port
    )
    agent = make_agent(tmp_path, "cb-01267", broker.port)
    sent: list[Key] = []
    try:
        start_collector(collector)
        if not autosave:  # on_changes counts message changes only: it saves with the readings
            wait_saved(broker)
        collector.signal(signal.SIGTERM)  # its persistent session keeps queueing at the broker
        agent.start()
        wait_until(lambda: agent.connected, 30, what="agent connected")
        sent += [publish_reading(agent, n) for n in range(100)]
        wait_until(lambda: len(agent.queue) == 0, 30, what="broker acknowledged all")
        broker.kill()
        broker.start()
        sent += [publish_reading(agent, n) for n in range(100, 110)]
        start_collector(collector)
        wait_until(lambda: len(agent.queue) == 0, 30, what="agent queue empty")
        later = set(sent[100:])
        wait_until(lambda: set(stored_keys(influxdb)) >= later, 30, interval=0.2, what="stored")
    finally:
        agent.stop()
        agent.queue.close()
        collector.cleanup()
        broker.stop()
    keys = stored_keys(influxdb)
    lost = len(set(sent) - set(keys))
    report.record(
        f"f04 broker kill -9, collector away, autosave {autosave or 'interval 1 s'}",
        sent=len(sent), stored=len(set(keys)), lost=lost,
        note="bound: readings the broker acked since its last autosave (agent keeps only un-acked)",
    )  # fmt: skip
    assert lost <= 100  # only those acknowledged before the kill can go; every later one arrives
    assert len(keys) == len(set(keys))
