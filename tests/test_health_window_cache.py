"""window_at's per-minute cache answers exactly what the date arithmetic answers: any time of
day (minute edges, window edges, midnight), a window past midnight, a zone with DST."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from collector.health import schedules
from collector.health.schedules import window_at
from collector.inventory import Schedule

SCHEDULES = [
    Schedule(id="daily", windows=["05:30-06:30", "17:00-18:30"]),
    Schedule(id="night", windows=["22:00-01:00", "23:59-24:00"]),
]
ZONES = [ZoneInfo("Asia/Ho_Chi_Minh"), ZoneInfo("Europe/Berlin")]  # Berlin: DST changes
T0 = 1_774_000_000_000  # March 2026: Berlin's spring change within the next days
MS = st.integers(0, 40 * 86_400_000)


@settings(max_examples=400, deadline=None)
@given(st.lists(MS, min_size=1, max_size=30), st.sampled_from(SCHEDULES), st.sampled_from(ZONES))
def test_cached_equals_computed(offsets, schedule, tz):
    for off in offsets:
        for ts in (T0 + off, T0 + off // 60_000 * 60_000, T0 + off // 60_000 * 60_000 - 1):
            assert window_at(schedule, ts, tz) == schedules._window_at(schedule, ts, tz)


def test_window_edges_through_the_cache():
    tz, daily = ZONES[0], SCHEDULES[0]
    found = (schedules._window_at(daily, T0 + m * 60_000, tz) for m in range(24 * 60))
    start, end = next(w for w in found if w is not None)
    hits = [window_at(daily, t, tz) for t in (start - 1, start, end - 1, end)]
    assert hits[0] is None and hits[1] == hits[2] == (start, end) and hits[3] is None
