"""The demo's live terminal screen: pure text from a snapshot, in Vietnamese or English."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from collector.health.events import State

TEXT = {
    "vi": {
        "title": "loaxa — hệ thống truyền thanh cơ sở {province}",
        "share": "Xã/phường có đài hoạt động: {op}/{n} = {pct} (mục tiêu {goal}%)",
        "no_data": "Chưa có số liệu",
        "counts": "Trạm: {total} | hoạt động {ok} | mất tín hiệu {down} | im lặng {silent} | "
        "chạy ắc quy {battery} | mất kết nối {link} | bảo trì {maint} | chưa rõ {unknown}",
        "not_operating": "Trạm không hoạt động",
        "cols": ("Trạm", "Xã/phường", "Trạng thái", "Từ", "Nguyên nhân", "Kỹ thuật viên"),
        "alerts": "Cảnh báo đã gửi",
        "none": "(không có)",
        "faults": "Sự cố mô phỏng",
        "footer": "Ctrl-C để dừng và xuất báo cáo",
    },
    "en": {
        "title": "loaxa — grassroots radio network of {province}",
        "share": "Communes operating: {op}/{n} = {pct} (goal {goal}%)",
        "no_data": "No data yet",
        "counts": "Stations: {total} | operating {ok} | down {down} | silent {silent} | "
        "on battery {battery} | link down {link} | maintenance {maint} | unknown {unknown}",
        "not_operating": "Stations not operating",
        "cols": ("Station", "Commune", "State", "Since", "Cause", "Technician"),
        "alerts": "Alerts sent",
        "none": "(none)",
        "faults": "Simulated faults",
        "footer": "Ctrl-C stops and writes the export",
    },
}

STATE_NAMES = {
    "vi": {
        State.OPERATING: "hoạt động",
        State.DOWN: "mất tín hiệu",
        State.SILENT: "im lặng",
        State.ON_BATTERY: "chạy ắc quy",
        State.BATTERY_LOW: "ắc quy yếu",
        State.LINK_DOWN: "mất kết nối",
        State.MAINTENANCE: "bảo trì",
        State.UNKNOWN: "chưa rõ",
    },
    "en": {s: s.value.replace("_", " ") for s in State},
}


@dataclass(frozen=True)
class StationRow:
    station: str
    commune: str
    state: State
    since_ms: int | None
    cause: str | None
    technician: str


@dataclass(frozen=True)
class Screen:
    province: str
    now_ms: int
    tz: str
    goal_percent: float
    communes_operating: int
    communes_counted: int
    states: dict[State, int]
    not_operating: Sequence[StationRow]
    alerts: Sequence[str]
    faults: Sequence[str]


def _clock(ms: int | None, tz: ZoneInfo) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz).strftime("%H:%M:%S")


def _cell(text: str, width: int) -> str:
    return text[: width - 1].ljust(width) if len(text) >= width else text.ljust(width)


def render(screen: Screen, lang: str = "vi", rows: int = 12) -> str:
    t, names, tz = TEXT[lang], STATE_NAMES[lang], ZoneInfo(screen.tz)
    n, op = screen.communes_counted, screen.communes_operating
    pct = f"{100.0 * op / n:.1f}%" if n else t["no_data"]
    s = screen.states
    lines = [
        f"{t['title'].format(province=screen.province)}    {_clock(screen.now_ms, tz)}",
        t["share"].format(op=op, n=n, pct=pct, goal=f"{screen.goal_percent:g}"),
        t["counts"].format(
            total=sum(s.values()),
            ok=s.get(State.OPERATING, 0),
            down=s.get(State.DOWN, 0),
            silent=s.get(State.SILENT, 0),
            battery=s.get(State.ON_BATTERY, 0) + s.get(State.BATTERY_LOW, 0),
            link=s.get(State.LINK_DOWN, 0),
            maint=s.get(State.MAINTENANCE, 0),
            unknown=s.get(State.UNKNOWN, 0),
        ),
        "",
        f"{t['not_operating']} ({len(screen.not_operating)})",
    ]
    widths = (12, 24, 14, 10, 13, 20)
    lines.append("".join(_cell(c, w) for c, w in zip(t["cols"], widths, strict=True)))
    for r in list(screen.not_operating)[:rows]:
        cells = (
            r.station,
            r.commune,
            names[r.state],
            _clock(r.since_ms, tz),
            r.cause or "-",
            r.technician,
        )
        lines.append("".join(_cell(c, w) for c, w in zip(cells, widths, strict=True)))
    if not screen.not_operating:
        lines.append(t["none"])
    for title, items in ((t["alerts"], screen.alerts), (t["faults"], screen.faults)):
        shown = [f"  {a}" for a in list(items)[-6:]] or [f"  {t['none']}"]
        lines += ["", f"{title}:", *shown]
    lines += ["", t["footer"]]
    return "\n".join(lines)
