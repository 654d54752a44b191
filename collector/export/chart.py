"""One-page report (PNG or PDF, matplotlib Agg): summary, availability by commune, worst
communes table. DejaVu Sans (bundled with matplotlib) carries the Vietnamese glyphs.

A bare ``Figure`` (no pyplot) renders with the Agg/PDF canvas, needs no display and keeps no
global state, so the scheduler can run it in a worker thread."""

from __future__ import annotations

from pathlib import Path

import matplotlib
from matplotlib.figure import Figure

from collector.export.columns import word
from collector.export.safe import output_path
from collector.export.tables import Tables, label

MAX_BARS = 60  # the page stays readable; the worst communes are the ones shown
_TEXT = {
    "chart": ("Tỷ lệ hoạt động theo xã (%)", "Availability by commune (%)"),
    "goal_line": ("Mục tiêu", "Goal"),
    "no_data": ("không có dữ liệu", "no data"),
    "commune": ("Xã", "Commune"),
    "availability": ("Hoạt động (%)", "Availability (%)"),
    "downtime": ("Ngừng (phút)", "Downtime (min)"),
    "outages": ("Số lần ngừng", "Outages"),
    "none_below": ("Tất cả các xã đạt mục tiêu", "Every commune met the goal"),
}


def _t(key: str, lang: str) -> str:
    vi, en = _TEXT[key]
    return en if lang == "en" else vi


def write_chart(tables: Tables, directory: Path, prefix: str, lang: str, fmt: str = "png") -> Path:
    if fmt not in ("png", "pdf"):
        raise ValueError(f"report format {fmt!r} is not png or pdf")
    path = output_path(directory, f"{prefix}-report.{fmt}")
    report = tables.report
    with matplotlib.rc_context({"font.family": "DejaVu Sans"}):
        fig = Figure(figsize=(11.69, 8.27))  # A4 landscape
        _header(fig, tables, lang)
        _bars(fig.add_axes((0.25, 0.08, 0.35, 0.72)), report, lang)
        _worst_table(fig.add_axes((0.64, 0.08, 0.34, 0.72)), report, lang)
        fig.savefig(path, format=fmt, dpi=110)
    return path


def _header(fig, tables: Tables, lang: str) -> None:
    r, s = tables.report, tables.report.summary
    share = s.share_meeting_goal_percent
    share_text = word("unknown", lang) if share is None else f"{share:.1f}"
    fig.text(0.02, 0.96, f"{label('title', lang)} - {r.province}", fontsize=15, weight="bold")
    fig.text(
        0.02,
        0.925,
        f"{label('period', lang)}: {r.period.label}    "
        f"{label('goal', lang)}: {r.goal_percent:g}    "
        f"{label('share_met', lang)}: {share_text} "
        f"({s.communes_meeting_goal}/{s.communes_known})    "
        f"{label('stations_unknown', lang)}: {s.stations_unknown}/{s.stations}",
        fontsize=9.5,
    )
    fig.text(0.02, 0.895, r.department, fontsize=9, style="italic")


def _bars(ax, report, lang: str) -> None:
    known = [c for c in report.communes if c.availability_percent is not None]
    unknown = [c for c in report.communes if c.availability_percent is None]
    ranked = sorted(known, key=lambda c: c.availability_percent)[:MAX_BARS]
    names = [c.name for c in ranked] + [c.name for c in unknown][: MAX_BARS - len(ranked)]
    values = [c.availability_percent for c in ranked]
    ys = range(len(names))
    colours = ["#2e7d32" if c.goal_met else "#c62828" for c in ranked]
    ax.barh(list(ys)[: len(values)], values, color=colours)
    for y in list(ys)[len(values) :]:
        ax.text(1, y, _t("no_data", lang), va="center", fontsize=7, color="grey")
    ax.axvline(
        report.goal_percent,
        color="black",
        linestyle="--",
        linewidth=0.8,
        label=_t("goal_line", lang),
    )
    ax.set_yticks(list(ys), names, fontsize=max(4, 9 - len(names) // 12))
    lo = min(values, default=100.0)
    x0 = max(0.0, min(lo, report.goal_percent) - 2)
    ax.set_xlim(x0, 100.5)
    ax.set_ylim(max(len(names), 6) - 0.5, -0.5)  # worst on top; few bars stay slim
    for y in list(ys)[len(values) :]:
        ax.text(x0 + 0.05, y, _t("no_data", lang), va="center", fontsize=7, color="grey")
    title = _t("chart", lang)
    if len(known) > MAX_BARS:
        title += f" - {MAX_BARS} " + ("xã thấp nhất" if lang == "vi" else "lowest")
    ax.set_title(title, fontsize=11)
    ax.legend(loc="lower right", fontsize=8)


def _worst_table(ax, report, lang: str) -> None:
    ax.axis("off")
    worst = report.summary.worst
    if not worst:
        ax.text(0.5, 0.9, _t("none_below", lang), ha="center", fontsize=11)
        return
    rows = [
        [
            c.name[:28],
            f"{c.availability_percent:.3f}",
            f"{c.downtime_ms / 60000:.1f}",
            str(len(c.outages)),
        ]
        for c in worst
    ]
    cols = [_t(k, lang) for k in ("commune", "availability", "downtime", "outages")]
    table = ax.table(cellText=rows, colLabels=cols, loc="upper center", cellLoc="left")
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    table.auto_set_column_width(list(range(len(cols))))
    ax.set_title(label("worst", lang), fontsize=11)
