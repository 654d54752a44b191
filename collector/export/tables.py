"""A report as tables: rows per level and the province summary lines, ready for any writer."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from collector.export.columns import (
    COMMUNE_KEYS,
    OUTAGE_KEYS,
    STATION_KEYS,
    Value,
    commune_row,
    local_text,
    outage_values,
    station_row,
    word,
)
from collector.export.report import Report

_SUMMARY: dict[str, tuple[str, str]] = {
    "title": (
        "Báo cáo hoạt động hệ thống truyền thanh cơ sở",
        "Commune radio network availability report",
    ),
    "province": ("Tỉnh", "Province"),
    "department": ("Đơn vị", "Department"),
    "period": ("Kỳ báo cáo", "Period"),
    "from": ("Từ", "From"),
    "to": ("Đến (không gồm)", "To (exclusive)"),
    "goal": ("Mục tiêu (%)", "Goal (%)"),
    "communes": ("Số xã", "Communes"),
    "communes_known": ("Số xã có dữ liệu", "Communes with data"),
    "communes_met": ("Số xã đạt mục tiêu", "Communes meeting the goal"),
    "share_met": ("Tỷ lệ xã đạt mục tiêu (%)", "Share of communes meeting the goal (%)"),
    "mean": ("Tỷ lệ hoạt động trung bình (%)", "Mean commune availability (%)"),
    "stations": ("Số đài", "Stations"),
    "stations_unknown": ("Số đài không có dữ liệu", "Stations without data"),
    "outages": ("Số lần ngừng (đài)", "Station outages"),
    "worst": ("Xã kém nhất", "Worst communes"),
    "generated": ("Lập lúc", "Generated"),
}


def label(key: str, lang: str) -> str:
    vi, en = _SUMMARY[key]
    return en if lang == "en" else vi


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


@dataclass(frozen=True)
class Tables:
    report: Report

    @property
    def stations(self) -> list[dict[str, Value]]:
        return [station_row(f) for f in self.report.stations]

    @property
    def communes(self) -> list[dict[str, Value]]:
        return [commune_row(f) for f in self.report.communes]

    @property
    def outages(self) -> list[dict[str, Value]]:
        tz = self.report.period.tz
        return [outage_values(o, f.commune, tz) for f in self.report.stations for o in f.outages]

    def levels(self) -> Iterator[tuple[str, list[str], list[dict[str, Value]]]]:
        yield "communes", COMMUNE_KEYS, self.communes
        yield "stations", STATION_KEYS, self.stations
        yield "outages", OUTAGE_KEYS, self.outages

    def summary(self, lang: str) -> list[tuple[str, Value]]:
        r, s = self.report, self.report.summary
        tz = r.period.tz
        unknown = word("unknown", lang)
        share, mean = _r(s.share_meeting_goal_percent), _r(s.mean_availability_percent)
        lines: list[tuple[str, Value]] = [
            (label("title", lang), None),
            (label("province", lang), r.province),
            (label("department", lang), r.department),
            (label("period", lang), r.period.label),
            (label("from", lang), local_text(r.period.t0_ms, tz)),
            (label("to", lang), local_text(r.period.t1_ms, tz)),
            (label("goal", lang), r.goal_percent),
            (label("communes", lang), s.communes),
            (label("communes_known", lang), s.communes_known),
            (label("communes_met", lang), s.communes_meeting_goal),
            (label("share_met", lang), unknown if share is None else share),
            (label("mean", lang), unknown if mean is None else mean),
            (label("stations", lang), s.stations),
            (label("stations_unknown", lang), s.stations_unknown),
            (label("outages", lang), s.outages),
            (label("generated", lang), local_text(r.generated_ms, tz)),
            (label("worst", lang), None),
        ]
        for c in s.worst:
            lines.append((f"{c.subject} {c.name}", _r(c.availability_percent)))
        return lines
