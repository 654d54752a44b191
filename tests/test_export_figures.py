"""Every export column for a hand-built timeline (pure computation, no I/O).

The timeline (also used by test_export_influx.py): commune 01273 has stations A (cb-01267,
required) and B (cb-01282, required); commune 01290 has C (cb-01290, required, no data at all
in October). Times are local (Asia/Ho_Chi_Minh).
"""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from collector.export.columns import commune_row, outage_values, station_row
from collector.export.figures import BroadcastSpan
from collector.export.period import (
    PeriodError,
    month_period,
    previous_month,
    range_period,
    year_period,
)
from collector.export.report import StationData, build_report
from collector.health.availability import Transition
from collector.health.events import Cause, State
from collector.inventory import parse_inventory
from loaxa.payloads import ProgramSource

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
A, B, C = "cb-01267", "cb-01282", "cb-01290"


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=TZ).timestamp() * 1000)


INVENTORY_TOML = """
[province]
code = "04"
slug = "cao-bang"
name = "Cao Bằng"
department = "Sở VHTTDL Cao Bằng"

[[schedules]]
id = "daily"
windows = ["05:30-06:30", "17:00-18:30"]

[[communes]]
code = "01273"
name = "=Phường Thục Phán"   # starts with "=": the formula-injection guard must escape it
schedule = "daily"

[[communes]]
code = "01290"
name = "Xã Bảo Lâm"
schedule = "daily"

[[stations]]
id = "cb-01267"
commune = "01273"
name = "Sông Hiến"
lat = 22.6
lon = 106.2
position = "demo"

[[stations]]
id = "cb-01282"
commune = "01273"
name = "Đề Thám"
lat = 22.6
lon = 106.2
position = "demo"

[[stations]]
id = "cb-01290"
commune = "01290"
name = "Pác Miầu"
lat = 22.8
lon = 105.4
position = "demo"
"""
INVENTORY = parse_inventory(tomllib.loads(INVENTORY_TOML))


def tr(station: str, when: str, state: State, cause: Cause | None = None) -> Transition:
    return Transition(station, ms(when), state, cause)


TIMELINE_A = [
    tr(A, "2026-09-01T00:00:00", State.OPERATING),
    # outage across the month boundary: 3 h 0 min 30 s in all, 1 h 0 min 30 s in October
    tr(A, "2026-09-30T22:00:00", State.DOWN, Cause.POWER),
    tr(A, "2026-10-01T01:00:30", State.OPERATING),
    # silent 10 min 15 s inside the morning window
    tr(A, "2026-10-05T05:40:00", State.SILENT, Cause.AUDIO_CHAIN),
    tr(A, "2026-10-05T05:50:15", State.OPERATING),
    # 3 h 30 min on battery (1 h 30 min of it low), still operating
    tr(A, "2026-10-10T08:00:00", State.ON_BATTERY, Cause.POWER),
    tr(A, "2026-10-10T10:00:00", State.BATTERY_LOW, Cause.POWER),
    tr(A, "2026-10-10T11:30:00", State.OPERATING),
    # 3 h maintenance: not downtime
    tr(A, "2026-10-20T09:00:00", State.MAINTENANCE),
    tr(A, "2026-10-20T12:00:00", State.OPERATING),
    # down from 23:00 on the last evening, continues into November
    tr(A, "2026-10-31T23:00:00", State.DOWN, Cause.NETWORK),
]
TIMELINE_B = [tr(B, "2026-09-15T08:00:00", State.OPERATING)]

BROADCASTS_A = [
    BroadcastSpan(
        ms("2026-10-02T05:30:00"), ms("2026-10-02T06:30:00"), ProgramSource.PROVINCIAL_RELAY
    ),
    BroadcastSpan(
        ms("2026-10-02T07:00:00"), ms("2026-10-02T07:30:00"), ProgramSource.LOCAL_BULLETIN
    ),
    # across the month start: 30 min in October
    BroadcastSpan(ms("2026-09-30T23:30:00"), ms("2026-10-01T00:30:00"), ProgramSource.OTHER),
]

DATA = {
    A: StationData(TIMELINE_A, evidence=True, broadcasts=BROADCASTS_A),
    B: StationData(TIMELINE_B, evidence=True),
    # C: a September state but nothing recorded in October -> unknown for October
    C: StationData([tr(C, "2026-09-20T00:00:00", State.OPERATING)], evidence=False),
}

OCT_S = 31 * 86_400
A_DOWN_S = 3630 + 615 + 3600
A_MAINT_S = 3 * 3600

OCT = month_period("2026-10", TZ)


def _report():
    return build_report(INVENTORY, DATA, OCT, generated_ms=0)


def test_month_bounds_are_local_midnight():
    assert datetime.fromtimestamp(OCT.t0_ms / 1000, UTC) == datetime(2026, 9, 30, 17, tzinfo=UTC)
    assert OCT.duration_ms == OCT_S * 1000
    dec = month_period("2026-12", TZ)
    assert dec.t1_ms == year_period("2027", TZ).t0_ms
    assert year_period("2026", TZ).duration_ms == 365 * 86_400_000
    assert range_period("2026-10-01", "2026-10-31", TZ).duration_ms == OCT.duration_ms
    assert previous_month(ms("2026-11-01T00:30:00"), TZ) == OCT


@pytest.mark.parametrize("bad", ["2026-13", "2026-1", "26-10", "oct"])
def test_bad_month_is_a_clear_error(bad):
    with pytest.raises(PeriodError, match="YYYY-MM"):
        month_period(bad, TZ)


def test_station_a_every_column():
    row = station_row(next(s for s in _report().stations if s.subject == A))
    known_s = OCT_S - A_MAINT_S
    assert row == {
        "station": A,
        "name": "Sông Hiến",
        "commune": "01273",
        "availability_percent": round(100 * (known_s - A_DOWN_S) / known_s, 4),
        "goal_met": False,
        "coverage_percent": 100.0,
        "downtime_min": round(A_DOWN_S / 60, 4),  # 130.75
        "outages": 3,
        "longest_outage_min": 60.5,  # October part of the boundary outage
        "mttr_min": round((10830 + 615) / 2 / 60, 4),  # restored ones, full duration
        "silent_in_window_min": 10.25,
        "battery_h": 3.5,
        "maintenance_min": 180.0,
        "broadcast_min": 120.0,
        "broadcast_in_schedule_min": 60.0,
        "scheduled_min": 31 * 150.0,
        "hours_provincial_relay": 1.0,
        "hours_national_relay": 0.0,
        "hours_local_bulletin": 0.5,
        "hours_fm_rebroadcast": 0.0,
        "hours_other": 0.5,
    }


def test_outages_split_at_month_boundaries():
    a = next(s for s in _report().stations if s.subject == A)
    rows = [outage_values(o, "01273", TZ) for o in a.outages]
    assert [r["start"] for r in rows] == [
        "2026-09-30T22:00:00+07:00",
        "2026-10-05T05:40:00+07:00",
        "2026-10-31T23:00:00+07:00",
    ]
    assert [r["end"] for r in rows] == [
        "2026-10-01T01:00:30+07:00",
        "2026-10-05T05:50:15+07:00",
        None,
    ]
    assert [r["in_period_min"] for r in rows] == [60.5, 10.25, 60.0]
    assert [r["duration_min"] for r in rows] == [180.5, 10.25, None]
    assert [r["cause"] for r in rows] == ["power", "audio_chain", "network"]
    assert [r["states"] for r in rows] == ["down", "silent", "down"]
    # September holds the other part of the boundary outage, November the continuation
    sep = build_report(INVENTORY, DATA, month_period("2026-09", TZ), 0)
    a_sep = next(s for s in sep.stations if s.subject == A)
    assert a_sep.downtime_ms == 2 * 3600 * 1000
    assert a_sep.outages[0].end_ms is None  # still down at the end of September
    nov = build_report(INVENTORY, DATA, month_period("2026-11", TZ), 0)
    assert next(s for s in nov.stations if s.subject == A).availability_percent == 0.0


def test_station_without_data_is_unknown_not_zero_or_hundred():
    row = station_row(next(s for s in _report().stations if s.subject == C))
    assert row["availability_percent"] is None
    assert row["goal_met"] is None
    assert row["coverage_percent"] == 0.0
    assert row["downtime_min"] == 0.0 and row["outages"] == 0
    assert row["scheduled_min"] == 31 * 150.0


def test_commune_rows_and_province_summary():
    report = _report()
    c1, c2 = report.communes
    # B operated all month: the commune is down exactly when A was down, and not during A's
    # maintenance (B carried the commune); maintenance minutes are the stations' sum.
    row = commune_row(c1)
    assert row["availability_percent"] == round(100 * (OCT_S - A_DOWN_S) / OCT_S, 4)
    assert row["downtime_min"] == round(A_DOWN_S / 60, 4)
    assert row["outages"] == 3 and row["longest_outage_min"] == 60.5
    assert row["maintenance_min"] == 180.0 and row["battery_h"] == 3.5
    assert row["stations"] == 2 and row["coverage_percent"] == 100.0
    assert row["scheduled_min"] == 2 * 31 * 150.0 and row["broadcast_min"] == 120.0
    assert commune_row(c2)["availability_percent"] is None  # its only station: no data
    s = report.summary
    assert (s.communes, s.communes_known, s.communes_meeting_goal) == (2, 1, 0)
    assert s.share_meeting_goal_percent == 0.0
    assert [c.subject for c in s.worst] == ["01273"]
    assert (s.stations, s.stations_unknown, s.outages) == (3, 1, 3)
    b = next(x for x in report.stations if x.subject == B)
    assert b.availability_percent == 100.0 and b.goal_met is True


def test_goal_is_configurable():
    report = build_report(INVENTORY, DATA, OCT, 0, goal_percent=99.0)
    assert report.communes[0].goal_met is True
    assert report.summary.share_meeting_goal_percent == 100.0
