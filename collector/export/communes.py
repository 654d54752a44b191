"""Commune and province figures built from the stations' timelines (pure).

A commune's radio system operates while every required station operates (as in
``collector.health.compliance``). Its timeline, per instant:

* DOWN/SILENT if any required station not in maintenance is DOWN/SILENT (the cause is the first
  failing station's, in inventory order);
* else UNKNOWN if any such station's state is unknown;
* else MAINTENANCE if every required station is in maintenance;
* else OPERATING.

Availability, downtime, outages, longest outage, MTTR and coverage of a commune come from that
timeline; silent minutes, battery hours, maintenance minutes and broadcast figures are the sums
over all its stations (station-minutes). A commune with no required station is unknown.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from collector.export.figures import DOWN_STATES, Figures
from collector.export.outages import outages
from collector.export.spans import segments
from collector.health.availability import Transition, availability
from collector.health.events import Cause, State


def commune_timeline(
    code: str, timelines: Sequence[Sequence[Transition]], t1_ms: int
) -> list[Transition]:
    """Combine the required stations' timelines into the commune's (see module docstring)."""
    if not timelines:
        return []
    cuts = sorted({a for tl in timelines for a, _, _, _ in segments(tl, t1_ms)})
    pos = [0] * len(timelines)
    current: list[tuple[State, Cause | None]] = [(State.UNKNOWN, None)] * len(timelines)
    out: list[Transition] = []
    for t in cuts:
        for k, tl in enumerate(timelines):  # advance each timeline to t
            while pos[k] < len(tl) and tl[pos[k]].ts_ms <= t:
                current[k] = (tl[pos[k]].state, tl[pos[k]].cause)
                pos[k] += 1
        state, cause = _combine(current)
        if not out or (out[-1].state, out[-1].cause) != (state, cause):
            out.append(Transition(code, t, state, cause))
    return out


def _combine(states: Sequence[tuple[State, Cause | None]]) -> tuple[State, Cause | None]:
    active = [(s, c) for s, c in states if s is not State.MAINTENANCE]
    failing = next(((s, c) for s, c in active if s in DOWN_STATES), None)
    if failing:
        return failing
    if any(s is State.UNKNOWN for s, _ in active):
        return State.UNKNOWN, None
    if not active:
        return State.MAINTENANCE, None
    return State.OPERATING, None


def commune_figures(
    code: str,
    name: str,
    required_timelines: Sequence[Sequence[Transition]],
    stations: Sequence[Figures],
    t0_ms: int,
    t1_ms: int,
    goal_percent: float,
) -> tuple[Figures, list[Transition]]:
    """Figures of one commune; ``stations`` are the figures of all its stations."""
    timeline = commune_timeline(code, required_timelines, t1_ms)
    avail = availability(timeline, t0_ms, t1_ms)
    found = outages(timeline, t0_ms, t1_ms, code)
    source_ms: dict = {}
    for f in stations:
        for src, ms in f.source_ms.items():
            source_ms[src] = source_ms.get(src, 0) + ms
    figures = Figures(
        subject=code,
        name=name,
        commune=code,
        period_ms=t1_ms - t0_ms,
        availability_ratio=avail.ratio,
        goal_percent=goal_percent,
        downtime_ms=sum(avail.ms.get(s, 0) for s in DOWN_STATES),
        outages=found,
        maintenance_ms=sum(f.maintenance_ms for f in stations),
        unknown_ms=avail.unknown_ms,
        silent_in_window_ms=sum(f.silent_in_window_ms for f in stations),
        battery_ms=sum(f.battery_ms for f in stations),
        broadcast_ms=sum(f.broadcast_ms for f in stations),
        broadcast_in_schedule_ms=sum(f.broadcast_in_schedule_ms for f in stations),
        scheduled_ms=sum(f.scheduled_ms for f in stations),
        source_ms=source_ms,
        stations=len(stations),
    )
    return figures, timeline


@dataclass(frozen=True)
class ProvinceSummary:
    communes: int
    communes_known: int  # with a known availability
    communes_meeting_goal: int
    goal_percent: float
    mean_availability_percent: float | None
    stations: int
    stations_unknown: int
    outages: int  # station outages overlapping the period
    worst: list[Figures]  # lowest availability first (known communes only)

    @property
    def share_meeting_goal_percent(self) -> float | None:
        k = self.communes_known
        return None if k == 0 else 100.0 * self.communes_meeting_goal / k


def province_summary(
    communes: Sequence[Figures], stations: Sequence[Figures], goal_percent: float, worst_n: int = 10
) -> ProvinceSummary:
    known = [c for c in communes if c.availability_percent is not None]
    ranked = sorted(known, key=lambda c: (c.availability_percent, c.subject))
    mean = None if not known else sum(c.availability_percent for c in known) / len(known)
    return ProvinceSummary(
        communes=len(communes),
        communes_known=len(known),
        communes_meeting_goal=sum(1 for c in known if c.goal_met),
        goal_percent=goal_percent,
        mean_availability_percent=mean,
        stations=len(stations),
        stations_unknown=sum(1 for s in stations if s.availability_percent is None),
        outages=sum(len(s.outages) for s in stations),
        worst=[c for c in ranked if not c.goal_met][:worst_n],
    )
