"""Fault case 5: the collector is killed -9 (a) between InfluxDB's acceptance of a write and
the drainer's acknowledgement of it (the spool rows are not yet deleted), and (b) in the middle
of an ingest batch (some messages spooled, not all PUBACKed). After each restart every reading
is in InfluxDB exactly once by key: redeliveries and rewrites land on the same points."""

from __future__ import annotations

import threading
import time

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from loaxa.payloads import Telemetry, to_json
from tests.faults import report
from tests.faults.fixtures_a import start_collector
from tests.faults.influx_proxy import InfluxProxy
from tests.faults.stack import STATIONS, CollectorProcess, stored_keys, write_collector_config
from tests.servers import free_port, wait_until

STATION = STATIONS["cb-01267"]
INGESTED = 'loaxa_ingest_messages_total{kind="telemetry"}'


def readings(start: int, count: int, base: int) -> list[tuple[tuple[str, int, int], bytes]]:
    out = []
    for seq in range(start, start + count):
        msg = Telemetry(station=STATION.id, session=1, seq=seq, ts=base + seq, agent_uptime_s=seq)
        out.append(((STATION.id, seq, base + seq), to_json(msg)))
    return out


def publish(port: int, batch: list[tuple[tuple[str, int, int], bytes]]) -> None:
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="f05-agent")
    client.max_inflight_messages_set(200)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        topic = STATION.topic("telemetry")
        for info in [client.publish(topic, payload, qos=1) for _, payload in batch]:
            info.wait_for_publish(30)
    finally:
        client.disconnect()
        client.loop_stop()


@pytest.fixture
def rig(tmp_path, mosquitto, influxdb):
    proxy = InfluxProxy(influxdb.url)
    http_port = free_port()
    config = write_collector_config(tmp_path, mosquitto.port, proxy.url, http_port)
    text = config.read_text().replace(
        "flush_interval_ms = 100\n", "flush_interval_ms = 100\nbatch_size = 100\n"
    )
    config.write_text(text.replace("keepalive_s = 5\n", "keepalive_s = 5\nmax_batch = 50\n"))
    proc = CollectorProcess(config, http_port)
    yield proc, proxy
    proc.cleanup()
    proxy.stop()


def wait_all_stored(influxdb, sent: list[tuple[str, int, int]], what: str) -> None:
    want = set(sent)
    wait_until(lambda: set(stored_keys(influxdb)) >= want, 60, interval=0.2, what=what)


def written_lines(proxy: InfluxProxy) -> int:
    return sum(lines for _, lines, status in proxy.log if status == 204)


@pytest.mark.parametrize(
    ("kills", "per_round"),
    [pytest.param(1, 1000, id="fast"), pytest.param(5, 2000, id="slow", marks=pytest.mark.slow)],
)
def test_collector_kill_9_loses_nothing(
    no_leaked_threads, kills, per_round, rig, mosquitto, influxdb
):
    collector, proxy = rig
    start_collector(collector)
    base = int(time.time() * 1000) - 10**6
    sent: list[tuple[str, int, int]] = []

    # (a) kill -9 after InfluxDB accepted a write, before the collector hears the 204
    for r in range(kills):
        batch = readings(len(sent), per_round, base)
        fired = threading.Event()

        def kill_once(fired=fired) -> None:
            if not fired.is_set():
                fired.set()
                collector.proc.kill()

        proxy.after_write = kill_once
        publish(mosquitto.port, batch)
        sent += [k for k, _ in batch]
        wait_until(fired.is_set, 30, what="kill between write and ack")
        collector.proc.wait(10)
        proxy.after_write = None
        start_collector(collector)
        wait_all_stored(influxdb, sent, f"round {r} stored")

    # (b) kill -9 mid-batch: a backlog queued by the broker, killed once ingest has begun (the
    # ingest of a small batch may finish before the kill lands: counted, not waited for)
    mid_batch = 0
    for r in range(kills):
        collector.kill()
        batch = readings(len(sent), per_round, base)
        publish(mosquitto.port, batch)  # queued by the broker for the collector's session
        sent += [k for k, _ in batch]
        start_collector(collector)
        seen = wait_until(lambda: collector.metric(INGESTED), 30, interval=0.005,
                          what=f"ingest begun {r}")  # fmt: skip
        collector.kill()
        mid_batch += seen < per_round
        start_collector(collector)
        wait_all_stored(influxdb, sent, f"mid-batch {r} stored")

    wait_until(collector.spool_empty, 30, what="spool drained")
    keys = stored_keys(influxdb)
    assert len(keys) == len(set(keys)) == len(sent) and set(keys) == set(sent)
    report.record(
        f"f05 collector kill -9 x{2 * kills} ({len(sent)} readings)",
        sent=len(sent), stored=len(keys), lost=len(set(sent) - set(keys)),
        duplicated=written_lines(proxy) - len(sent),  # rewritten points, overwritten in place
        mid_batch_kills=mid_batch,
        note="duplicated = lines InfluxDB accepted more than once (same point, overwritten)",
    )  # fmt: skip
