"""Export rows: the column keys, their Vietnamese/English headers and value formatting.

Keys are stable (the upstream JSON uses the same); headers depend on ``lang``. Durations are
exact ms rounded to 4 decimals of the unit (minutes: 0.006 s), percentages to 4 decimals.
Unknown availability is written as the word "không rõ"/"unknown", never as 0 or 100.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from collector.export.figures import Figures
from collector.export.outages import Outage
from loaxa.payloads import ProgramSource

Value = str | int | float | None

HEADERS: dict[str, tuple[str, str]] = {  # key -> (vi, en)
    "station": ("Mã đài", "Station"),
    "commune": ("Mã xã", "Commune code"),
    "name": ("Tên", "Name"),
    "stations": ("Số đài", "Stations"),
    "availability_percent": ("Tỷ lệ hoạt động (%)", "Availability (%)"),
    "goal_met": ("Đạt mục tiêu", "Goal met"),
    "coverage_percent": ("Độ phủ dữ liệu (%)", "Data coverage (%)"),
    "downtime_min": ("Thời gian ngừng (phút)", "Downtime (min)"),
    "outages": ("Số lần ngừng", "Outages"),
    "longest_outage_min": ("Lần ngừng dài nhất (phút)", "Longest outage (min)"),
    "mttr_min": ("Thời gian khắc phục TB (phút)", "Mean time to restore (min)"),
    "silent_in_window_min": ("Im lặng trong giờ phát (phút)", "Silent in windows (min)"),
    "battery_h": ("Chạy ắc quy (giờ)", "On battery (h)"),
    "maintenance_min": ("Bảo trì (phút)", "Maintenance (min)"),
    "broadcast_min": ("Đã phát (phút)", "Broadcast delivered (min)"),
    "broadcast_in_schedule_min": ("Phát trong lịch (phút)", "Delivered in schedule (min)"),
    "scheduled_min": ("Theo lịch (phút)", "Scheduled (min)"),
    "hours_provincial_relay": ("Tiếp sóng tỉnh (giờ)", "Provincial relay (h)"),
    "hours_national_relay": ("Tiếp sóng quốc gia (giờ)", "National relay (h)"),
    "hours_local_bulletin": ("Bản tin địa phương (giờ)", "Local bulletin (h)"),
    "hours_fm_rebroadcast": ("Phát lại FM (giờ)", "FM rebroadcast (h)"),
    "hours_other": ("Nguồn khác (giờ)", "Other source (h)"),
    "start": ("Bắt đầu", "Start"),
    "end": ("Kết thúc", "End"),
    "in_period_min": ("Trong kỳ (phút)", "In period (min)"),
    "duration_min": ("Tổng thời gian (phút)", "Full duration (min)"),
    "states": ("Trạng thái", "States"),
    "cause": ("Nguyên nhân", "Cause"),
    "causes": ("Các nguyên nhân", "All causes"),
}

WORDS: dict[str, tuple[str, str]] = {
    "unknown": ("không rõ", "unknown"),
    "met": ("đạt", "met"),
    "not_met": ("không đạt", "not met"),
    "continues": ("chưa khắc phục", "continues"),
}

_FIGURE_KEYS = [
    "availability_percent",
    "goal_met",
    "coverage_percent",
    "downtime_min",
    "outages",
    "longest_outage_min",
    "mttr_min",
    "silent_in_window_min",
    "battery_h",
    "maintenance_min",
    "broadcast_min",
    "broadcast_in_schedule_min",
    "scheduled_min",
    *(f"hours_{s.value}" for s in ProgramSource),
]
STATION_KEYS = ["station", "name", "commune", *_FIGURE_KEYS]
COMMUNE_KEYS = ["commune", "name", "stations", *_FIGURE_KEYS]
OUTAGE_KEYS = [
    "station",
    "commune",
    "start",
    "end",
    "in_period_min",
    "duration_min",
    "states",
    "cause",
    "causes",
]


def word(key: str, lang: str) -> str:
    vi, en = WORDS[key]
    return en if lang == "en" else vi


def header(key: str, lang: str) -> str:
    vi, en = HEADERS[key]
    return en if lang == "en" else vi


def minutes(ms: float) -> float:
    return round(ms / 60_000, 4)


def hours(ms: float) -> float:
    return round(ms / 3_600_000, 4)


def figure_values(f: Figures) -> dict[str, Value]:
    """Machine values (None = unknown) shared by the JSON report and the writers."""
    pct = f.availability_percent
    mttr = f.mttr_ms
    out: dict[str, Value] = {
        "name": f.name,
        "commune": f.commune,
        "availability_percent": None if pct is None else round(pct, 4),
        "goal_met": f.goal_met,
        "coverage_percent": round(100 * f.coverage_ratio, 4),
        "downtime_min": minutes(f.downtime_ms),
        "outages": len(f.outages),
        "longest_outage_min": minutes(f.longest_outage_ms),
        "mttr_min": None if mttr is None else minutes(mttr),
        "silent_in_window_min": minutes(f.silent_in_window_ms),
        "battery_h": hours(f.battery_ms),
        "maintenance_min": minutes(f.maintenance_ms),
        "broadcast_min": minutes(f.broadcast_ms),
        "broadcast_in_schedule_min": minutes(f.broadcast_in_schedule_ms),
        "scheduled_min": minutes(f.scheduled_ms),
        **{f"hours_{s.value}": hours(f.source_ms.get(s, 0)) for s in ProgramSource},
    }
    return out


def display(key: str, value: Value | bool, lang: str) -> Value:
    """A machine value as a spreadsheet cell: words for unknown and the goal."""
    if key == "goal_met":
        return word("unknown" if value is None else ("met" if value else "not_met"), lang)
    if value is None and key in ("availability_percent", "mttr_min"):
        return word("unknown", lang)
    if value is None and key in ("end", "duration_min"):
        return word("continues", lang)
    return value


def local_text(ts_ms: int | None, tz: ZoneInfo) -> str | None:
    if ts_ms is None:
        return None
    return datetime.fromtimestamp(ts_ms / 1000, tz).isoformat(timespec="seconds")


def outage_values(o: Outage, commune: str, tz: ZoneInfo) -> dict[str, Value]:
    dur = o.duration_ms
    return {
        "station": o.subject,
        "commune": commune,
        "start": local_text(o.start_ms, tz),
        "end": local_text(o.end_ms, tz),
        "in_period_min": minutes(o.in_period_ms),
        "duration_min": None if dur is None else minutes(dur),
        "states": ",".join(s.value for s in o.states),
        "cause": o.cause.value,
        "causes": ",".join(c.value for c in o.causes),
    }


def station_row(f: Figures) -> dict[str, Value]:
    return {"station": f.subject, **figure_values(f)}


def commune_row(f: Figures) -> dict[str, Value]:
    return {**figure_values(f), "stations": f.stations}
