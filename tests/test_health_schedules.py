"""Schedules (local windows, midnight, zones) and availability arithmetic (exact ms)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.health.availability import Transition, availability
from collector.health.events import State
from collector.health.schedules import in_window, scheduled_minutes, scheduled_ms, window_at
from collector.inventory import Schedule

VN = ZoneInfo("Asia/Ho_Chi_Minh")
DAILY = Schedule(id="daily", windows=["05:30-06:30", "17:00-18:30"])
NIGHT = Schedule(id="night", windows=["22:00-01:00"])
ALWAYS = Schedule(id="fm", always=True)


def at(day: int, hh: int, mm: int = 0, tz: ZoneInfo = VN) -> int:
    return int(datetime(2026, 11, day, hh, mm, tzinfo=tz).timestamp() * 1000)


@pytest.mark.parametrize(
    ("ts", "inside"),
    [
        (at(27, 5, 29), False),
        (at(27, 5, 30), True),  # start inclusive
        (at(27, 6, 29), True),
        (at(27, 6, 30), False),  # end exclusive
        (at(27, 17, 45), True),
        (at(27, 12), False),
    ],
)
def test_in_window_local_time(ts, inside):
    assert in_window(DAILY, ts, VN) is inside


def test_window_across_midnight_belongs_to_the_evening_it_starts():
    assert window_at(NIGHT, at(28, 0, 30), VN) == (at(27, 22), at(28, 1))
    assert in_window(NIGHT, at(27, 23), VN)
    assert not in_window(NIGHT, at(28, 1), VN)
    # 02:00 on the 27th to 02:00 on the 28th holds 00:00-01:00 (26th's) and 22:00-01:00
    assert scheduled_minutes(NIGHT, at(27, 2), at(28, 2), VN) == 180


def test_scheduled_minutes_exact_over_days_and_partial_windows():
    assert scheduled_minutes(DAILY, at(27, 0), at(28, 0), VN) == 150
    assert scheduled_minutes(DAILY, at(27, 6), at(27, 17, 15), VN) == 45
    assert scheduled_ms(DAILY, at(27, 6, 0) + 1, at(27, 6, 0) + 2, VN) == 1
    assert scheduled_minutes(DAILY, at(1, 0), at(1, 0) + 30 * 86_400_000, VN) == 150 * 30
    assert scheduled_minutes(ALWAYS, at(27, 3), at(27, 4, 30), VN) == 90
    assert scheduled_ms(DAILY, at(27, 6), at(27, 5), VN) == 0


def test_windows_are_wall_clock_in_a_zone_with_dst():
    paris = ZoneInfo("Europe/Paris")  # 29 March 2026: 02:00 -> 03:00
    night = Schedule(id="n", windows=["01:00-04:00"])
    t0 = int(datetime(2026, 3, 29, 0, tzinfo=paris).timestamp() * 1000)
    assert scheduled_minutes(night, t0, t0 + 86_400_000, paris) == 120


def test_availability_sums_each_state_and_keeps_unknown_apart():
    tr = [
        Transition("s", 1_000, State.OPERATING),
        Transition("s", 61_000, State.DOWN),
        Transition("s", 121_000, State.LINK_DOWN),
        Transition("s", 181_000, State.MAINTENANCE),
    ]
    a = availability(tr, 0, 241_000)
    assert a.ms == {
        State.UNKNOWN: 1_000,
        State.OPERATING: 60_000,
        State.DOWN: 60_000,
        State.LINK_DOWN: 60_000,
        State.MAINTENANCE: 60_000,
    }
    assert a.seconds[State.DOWN] == 60.0
    assert a.operating_ms == 120_000 and a.ratio == pytest.approx(2 / 3)
    # a window starting mid-period takes the state in force
    assert availability(tr, 90_000, 100_000).ms == {State.DOWN: 10_000}
    assert availability([], 0, 5).ms == {State.UNKNOWN: 5} and availability([], 0, 5).ratio is None
    with pytest.raises(ValueError, match="before t0"):
        availability(tr, 10, 5)


@given(
    st.lists(st.tuples(st.integers(0, 10_000), st.sampled_from(list(State))), max_size=30),
    st.integers(0, 5_000),
    st.integers(0, 6_000),
)
def test_availability_covers_the_period_exactly(rows, t0, span):
    tr = [Transition("s", ts, s) for ts, s in sorted(rows, key=lambda r: r[0])]
    a = availability(tr, t0, t0 + span)
    assert sum(a.ms.values()) == span
