"""Broadcast schedules: daily windows in local province time, or 24 h channels.

Pure functions over ms since the Unix epoch; the zone comes from the inventory. Windows are
expanded per local calendar day, so results are exact across midnight and correct in any zone
(Asia/Ho_Chi_Minh has no DST; zones with DST work too, a window being a wall-clock span).
A window "22:00-01:00" runs past midnight into the next day.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from collector.inventory import Schedule

_DAY_MS = 86_400_000


def _parse(window: str) -> tuple[time, time, int]:
    """("05:30-06:30") -> (start, end, extra days the end lies after the start's day)."""
    start_s, end_s = window.split("-")
    start = time.fromisoformat(start_s)
    if end_s == "24:00":
        return start, time(0, 0), 1
    end = time.fromisoformat(end_s)
    return start, end, 1 if end <= start else 0


def _ms(day: date, at: time, tz: ZoneInfo) -> int:
    return int(datetime.combine(day, at, tzinfo=tz).timestamp() * 1000)


def _local_day(ts_ms: int, tz: ZoneInfo) -> date:
    return datetime.fromtimestamp(ts_ms / 1000, tz).date()


def windows_between(
    schedule: Schedule, t0_ms: int, t1_ms: int, tz: ZoneInfo
) -> Iterator[tuple[int, int]]:
    """Yield (start_ms, end_ms) of every window occurrence overlapping [t0, t1), clipped."""
    if t1_ms <= t0_ms:
        return
    if schedule.always:
        yield t0_ms, t1_ms
        return
    day = _local_day(t0_ms, tz) - timedelta(days=1)  # a window may start the day before
    last = _local_day(t1_ms, tz)
    found: list[tuple[int, int]] = []
    while day <= last:
        for window in schedule.windows:
            start, end, extra = _parse(window)
            a, b = _ms(day, start, tz), _ms(day + timedelta(days=extra), end, tz)
            a, b = max(a, t0_ms), min(b, t1_ms)
            if a < b:
                found.append((a, b))
        day += timedelta(days=1)
    yield from sorted(found)


# window_at per (schedule, zone, UTC minute): window edges are whole local minutes and zones
# in use are offset by whole minutes, so every ts of one minute gets the same answer. The health
# engine asks once per telemetry message; the date arithmetic was ~40 % of its time.
_MINUTE_MS = 60_000
_CACHE_MAX = 8192
_cache: dict[tuple[int, int, int], tuple[Schedule, ZoneInfo, tuple[int, int] | None]] = {}


def window_at(schedule: Schedule, ts_ms: int, tz: ZoneInfo) -> tuple[int, int] | None:
    """The window occurrence containing ``ts_ms`` as (start_ms, end_ms), unclipped; else None."""
    if schedule.always:
        return (ts_ms - _DAY_MS * 36500, ts_ms + _DAY_MS * 36500)
    key = (id(schedule), id(tz), ts_ms // _MINUTE_MS)
    hit = _cache.get(key)
    if hit is not None and hit[0] is schedule and hit[1] is tz:  # ids are only reused if freed
        return hit[2]
    found = _window_at(schedule, ts_ms, tz)
    if len(_cache) >= _CACHE_MAX:
        _cache.clear()
    _cache[key] = (schedule, tz, found)
    return found


def _window_at(schedule: Schedule, ts_ms: int, tz: ZoneInfo) -> tuple[int, int] | None:
    day = _local_day(ts_ms, tz)
    for d in (day - timedelta(days=1), day):
        for window in schedule.windows:
            start, end, extra = _parse(window)
            a, b = _ms(d, start, tz), _ms(d + timedelta(days=extra), end, tz)
            if a <= ts_ms < b:
                return a, b
    return None


def in_window(schedule: Schedule, ts_ms: int, tz: ZoneInfo) -> bool:
    """Is ``ts_ms`` inside a broadcast window (start inclusive, end exclusive)?"""
    return window_at(schedule, ts_ms, tz) is not None


def scheduled_ms(schedule: Schedule, t0_ms: int, t1_ms: int, tz: ZoneInfo) -> int:
    """Scheduled broadcast time inside [t0, t1), in ms (exact)."""
    return sum(b - a for a, b in _merged(windows_between(schedule, t0_ms, t1_ms, tz)))


def scheduled_minutes(schedule: Schedule, t0_ms: int, t1_ms: int, tz: ZoneInfo) -> float:
    return scheduled_ms(schedule, t0_ms, t1_ms, tz) / 60_000


def _merged(spans: Iterator[tuple[int, int]]) -> list[tuple[int, int]]:
    """Overlapping windows (two that share minutes) count once."""
    out: list[tuple[int, int]] = []
    for a, b in spans:
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out
