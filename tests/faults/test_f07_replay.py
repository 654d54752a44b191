"""Fault case 7: replaying every message twice and ten times changes nothing in InfluxDB.

The same bytes are what a broker redelivers after a lost PUBACK and what an agent resends after
a crash; storage keys points by measurement + tags + ts, so a replay must overwrite, not add."""

from __future__ import annotations

import time

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from loaxa.payloads import Event, EventCode, Telemetry, to_json
from tests.faults import report
from tests.faults.fixtures_a import start_collector
from tests.faults.stack import DB, STATIONS, stored_rows
from tests.servers import wait_until

TELEMETRY_METRIC = 'loaxa_ingest_messages_total{kind="telemetry"}'
EVENT_METRIC = 'loaxa_ingest_messages_total{kind="event"}'


def messages(per_station: int) -> list[tuple[str, bytes]]:
    base = int(time.time() * 1000) - per_station * 1000
    out = []
    for station in STATIONS.values():
        for seq in range(per_station):
            ts = base + seq * 1000
            reading = Telemetry(
                station=station.id, session=3, seq=seq, ts=ts, agent_uptime_s=seq, backfill=True
            )
            out.append((station.topic("telemetry"), to_json(reading)))
        event = Event(
            station=station.id, session=3, seq=per_station, ts=base, code=EventCode.DOOR_OPEN
        )
        out.append((station.topic("event"), to_json(event)))
    return out


def publish(port: int, batch: list[tuple[str, bytes]]) -> None:
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="f07-replayer")
    client.max_inflight_messages_set(200)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        for info in [client.publish(t, p, qos=1) for t, p in batch]:
            info.wait_for_publish(30)
    finally:
        client.disconnect()
        client.loop_stop()


def snapshot(influxdb) -> dict[str, list[dict]]:
    return {m: stored_rows(influxdb, m) for m in ("telemetry", "event")}


@pytest.mark.parametrize(
    "per_station",
    [pytest.param(30, id="fast"), pytest.param(1000, id="slow", marks=pytest.mark.slow)],
)
def test_replay_twice_and_ten_times_changes_nothing(
    no_leaked_threads, per_station, mosquitto, influxdb, collector
):
    start_collector(collector)
    batch = messages(per_station)
    n_tel = sum(1 for t, _ in batch if t.endswith("/telemetry"))
    publish(mosquitto.port, batch)
    wait_until(lambda: len(stored_rows(influxdb)) == n_tel, 60, what="first pass stored")
    wait_until(collector.spool_empty, 30, what="spool drained")
    first = snapshot(influxdb)
    assert len(first["event"]) == len(STATIONS)
    passes = 1
    for times in (2, 10):
        for _ in range(times - passes):
            publish(mosquitto.port, batch)
        passes = times
        expected = n_tel * passes
        wait_until(lambda e=expected: collector.metric(TELEMETRY_METRIC) == e, 120, what="replay")
        wait_until(lambda p=passes: collector.metric(EVENT_METRIC) == len(STATIONS) * p, 30)
        wait_until(collector.spool_empty, 60, what="spool drained")
        after = snapshot(influxdb)
        assert after == first, f"replayed {times}x: InfluxDB changed"
        series = influxdb.rows('SHOW SERIES FROM "telemetry"', DB)
        report.record(
            f"f07 replay x{times} ({len(batch)} messages)",
            sent=len(batch) * times, stored=len(after["telemetry"]) + len(after["event"]),
            duplicated=len(batch) * (times - 1), lost=0, series=len(series),
        )  # fmt: skip
