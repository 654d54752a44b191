"""Case 12: agent clock faults through the real ingest (in-process collector, real Mosquitto and
InfluxDB 1.x): a clock reset to 1970, a clock a day ahead, a clock a day behind, beside a
station with a good clock.

Asserted: 1970 and day-ahead readings are rejected (``too_old`` / ``future_ts``), counted and
reported as ``ingest_reject`` points, and none is written as telemetry at the wrong time; every
faulty station's skew is visible as ``clock_skew`` points (also for the rejected ones); the good
station loses nothing. A clock a day behind on a live message is indistinguishable, by receive
time alone, from a message the broker held while the collector was away: it is stored at its
own ``ts`` and its skew (+1 day) is visible; that limit is recorded in the figures.
"""

from __future__ import annotations

import pytest

from loaxa.topics import Kind
from tests.faults.collector_rig import (
    AgentLike,
    RunningCollector,
    now_ms,
    rows,
    telemetry,
    write_config,
)
from tests.faults.report import record
from tests.servers import wait_until

DAY_MS = 86_400_000
GOOD, EPOCH, AHEAD, BEHIND = "cb-01309", "cb-01267", "cb-01282", "cb-01290"
COMMUNE = {GOOD: "01290", EPOCH: "01273", AHEAD: "01273", BEHIND: "01290"}


def _skews(influxdb, station: str) -> list[int]:
    return [
        r["skew_ms"]
        for r in rows(influxdb, f"SELECT skew_ms FROM clock_skew WHERE station = '{station}'")
    ]


def _rejects(influxdb, reason: str) -> int:
    query = f"SELECT count FROM ingest_reject WHERE reason = '{reason}'"
    return sum(r["count"] for r in rows(influxdb, query))


def _count(influxdb, station: str) -> int:
    return len(rows(influxdb, f"SELECT seq FROM telemetry WHERE station = '{station}'"))


@pytest.mark.parametrize("n", [5, pytest.param(200, marks=pytest.mark.slow)])
def test_clock_faults_are_rejected_reported_and_visible(tmp_path, mosquitto, influxdb, n):
    config = write_config(tmp_path, mosquitto.port, influxdb.url, extra="")
    agent = AgentLike(mosquitto.port)
    try:
        with RunningCollector(config) as collector:
            wait_until(lambda: collector.mqtt.connected, 10, what="collector connected")
            base = now_ms() - n * 1000  # one reading a second, the last one now
            for seq in range(1, n + 1):
                now = base + seq * 1000
                offsets = {GOOD: 0, EPOCH: -now + seq * 1000, AHEAD: DAY_MS, BEHIND: -DAY_MS}
                for station, offset in offsets.items():
                    payload = telemetry(station, seq, now + offset)
                    agent.send(station, COMMUNE[station], Kind.TELEMETRY, payload)
            wait_until(lambda: _count(influxdb, GOOD) == n, 30, what="good station stored")
            wait_until(lambda: _count(influxdb, BEHIND) == n, 30, what="day-behind stored")
            wait_until(
                lambda: all(_skews(influxdb, s) for s in (EPOCH, AHEAD, BEHIND)),
                30,
                what="clock_skew points of every faulty station",
            )
            wait_until(
                lambda: _rejects(influxdb, "too_old") == n and _rejects(influxdb, "future_ts") == n,
                30,
                what="ingest_reject points counting every reject",
            )
            _, rejected, _ = collector.stats.snapshot()
    finally:
        agent.close()
    too_old, future = _rejects(influxdb, "too_old"), _rejects(influxdb, "future_ts")
    behind_ts = [
        r["time"] for r in rows(influxdb, f"SELECT seq FROM telemetry WHERE station = '{BEHIND}'")
    ]
    record(
        f"f12 clock faults ({n} per station)",
        sent=4 * n,
        stored_good=_count(influxdb, GOOD),
        lost=n - _count(influxdb, GOOD),
        rejected_1970=too_old,
        rejected_day_ahead=future,
        written_at_wrong_time=_count(influxdb, EPOCH) + _count(influxdb, AHEAD),
        skew_1970_s=round(max(_skews(influxdb, EPOCH)) / 1000),
        skew_ahead_s=round(min(_skews(influxdb, AHEAD)) / 1000),
        skew_behind_s=round(max(_skews(influxdb, BEHIND)) / 1000),
        note="day-behind live readings stored at their ts, skew visible (receive time cannot tell)",
    )
    assert _count(influxdb, GOOD) == n
    assert _count(influxdb, EPOCH) == 0 and _count(influxdb, AHEAD) == 0
    assert rejected[next(r for r in rejected if r.value == "too_old")] == n
    assert rejected[next(r for r in rejected if r.value == "future_ts")] == n
    assert too_old == n and future == n
    assert min(_skews(influxdb, EPOCH)) > 50 * 365 * DAY_MS // 1000 * 1000
    spread = n * 1000 + 60_000  # readings were stamped over n seconds, sent at once
    assert max(_skews(influxdb, AHEAD)) < -DAY_MS + spread
    assert min(_skews(influxdb, BEHIND)) > DAY_MS - 60_000
    assert len(behind_ts) == n
