"""Assemble a period's report from the inventory and the data read back (pure).

``StationData`` is what the reader found for one station: its timeline (transitions from
before the period carried in), whether anything at all was recorded for it inside the period
(``evidence``), and its logged broadcasts. A station with no evidence in the whole period is
UNKNOWN for the period: its carried-in state is not trusted, because nothing shows that the
collector was watching it (the collector may have been off).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from collector.export.communes import ProvinceSummary, commune_figures, province_summary
from collector.export.figures import BroadcastSpan, Figures, station_figures
from collector.export.period import Period
from collector.health.availability import Transition
from collector.health.schedules import windows_between
from collector.inventory import Inventory


@dataclass
class StationData:
    timeline: list[Transition] = field(default_factory=list)
    evidence: bool = False
    broadcasts: list[BroadcastSpan] = field(default_factory=list)


@dataclass(frozen=True)
class Report:
    period: Period
    province: str  # province name
    province_slug: str
    province_code: str
    department: str
    goal_percent: float
    stations: list[Figures]
    communes: list[Figures]
    summary: ProvinceSummary
    generated_ms: int


def build_report(
    inventory: Inventory,
    data: Mapping[str, StationData],
    period: Period,
    generated_ms: int,
    goal_percent: float | None = None,
    progress: Callable[[int], None] | None = None,
) -> Report:
    """Figures for every inventory station and commune; ``progress(n)`` after each commune."""
    goal = inventory.province.goal_percent if goal_percent is None else goal_percent
    t0, t1, tz = period.t0_ms, period.t1_ms, inventory.province.tz
    stations: list[Figures] = []
    communes: list[Figures] = []
    windows_of: dict[str, list[tuple[int, int]]] = {}  # per schedule: stations share them
    for code, commune in inventory.communes.items():
        members = inventory.stations_of(code)
        figs: list[Figures] = []
        required: list[list[Transition]] = []
        for st in members:
            d = data.get(st.id) or StationData()
            timeline = d.timeline if d.evidence else []
            schedule = inventory.schedule_for(st.id)
            if schedule.id not in windows_of:
                windows_of[schedule.id] = list(windows_between(schedule, t0, t1, tz))
            windows = windows_of[schedule.id]
            figs.append(
                station_figures(st.id, st.name, code, timeline, t0, t1, windows, d.broadcasts, goal)
            )
            if st.required:
                required.append(timeline)
        cf, _ = commune_figures(code, commune.name, required, figs, t0, t1, goal)
        stations.extend(figs)
        communes.append(cf)
        if progress:
            progress(1)
    return Report(
        period=period,
        province=inventory.province.name,
        province_slug=inventory.province.slug,
        province_code=inventory.province.code,
        department=inventory.province.department,
        goal_percent=goal,
        stations=stations,
        communes=communes,
        summary=province_summary(communes, stations, goal),
        generated_ms=generated_ms,
    )
