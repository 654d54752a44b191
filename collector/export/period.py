"""Report periods: a month, a reporting year or any range, bounded in the province's local time.

A month is [00:00 on the 1st, 00:00 on the 1st of the next month) in the province zone
(Asia/Ho_Chi_Minh, UTC+7, no DST), converted to ms since the Unix epoch (UTC). The end is
exclusive, so consecutive periods tile time and an outage spanning a boundary is split
exactly between them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_YEAR = re.compile(r"^(\d{4})$")


class PeriodError(ValueError):
    """A period argument that is not a month (YYYY-MM), year (YYYY) or valid date range."""


@dataclass(frozen=True)
class Period:
    label: str  # "2026-10", "2026" or "2026-10-01_2026-10-15", used in file names
    kind: str  # "month" | "year" | "range"
    t0_ms: int
    t1_ms: int  # exclusive
    tz: ZoneInfo

    @property
    def duration_ms(self) -> int:
        return self.t1_ms - self.t0_ms

    def local(self, ts_ms: int) -> datetime:
        return datetime.fromtimestamp(ts_ms / 1000, self.tz)


def _ms(day: date, tz: ZoneInfo) -> int:
    return int(datetime.combine(day, time(0, 0), tzinfo=tz).timestamp() * 1000)


def month_period(text: str, tz: ZoneInfo) -> Period:
    m = _MONTH.match(text)
    if not m or not 1 <= int(m.group(2)) <= 12:
        raise PeriodError(f"--month {text!r}: expected YYYY-MM, e.g. 2026-10")
    year, month = int(m.group(1)), int(m.group(2))
    start = date(year, month, 1)
    end = date(year + (month == 12), month % 12 + 1, 1)
    return Period(text, "month", _ms(start, tz), _ms(end, tz), tz)


def year_period(text: str, tz: ZoneInfo) -> Period:
    if not _YEAR.match(text):
        raise PeriodError(f"--year {text!r}: expected YYYY, e.g. 2026")
    year = int(text)
    return Period(text, "year", _ms(date(year, 1, 1), tz), _ms(date(year + 1, 1, 1), tz), tz)


def _parse_day(text: str, flag: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as err:
        raise PeriodError(f"{flag} {text!r}: expected YYYY-MM-DD") from err


def range_period(start: str, end: str, tz: ZoneInfo) -> Period:
    """Whole local days from ``start`` to ``end`` inclusive (--from 2026-10-01 --to 2026-10-15)."""
    d0, d1 = _parse_day(start, "--from"), _parse_day(end, "--to")
    if d1 < d0:
        raise PeriodError(f"--to {end} is before --from {start}")
    label = f"{d0.isoformat()}_{d1.isoformat()}"
    return Period(label, "range", _ms(d0, tz), _ms(d1 + timedelta(days=1), tz), tz)


def previous_month(now_ms: int, tz: ZoneInfo) -> Period:
    """The month before the local month containing ``now_ms`` (what the 1st-of-month job runs)."""
    today = datetime.fromtimestamp(now_ms / 1000, tz).date()
    last = today.replace(day=1) - timedelta(days=1)
    return month_period(f"{last.year:04d}-{last.month:02d}", tz)
