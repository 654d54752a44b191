"""Per-station figures for one period: pure arithmetic over a timeline, windows and broadcasts.

Definitions (the columns of every export; REPORT_API.md repeats them):

* availability % = operating time / (period - unknown - maintenance) x 100, from
  :func:`collector.health.availability.availability` (the daemon's arithmetic); operating
  states are OPERATING, ON_BATTERY, BATTERY_LOW, LINK_DOWN. ``None`` (unknown) when no time
  of the period has a known state - never 0 % or 100 %.
* downtime = time in DOWN or SILENT inside the period; maintenance is reported apart.
* outages = runs of DOWN/SILENT overlapping the period (one spanning the boundary counts in
  both periods, each with its own part); longest = longest part inside the period;
  MTTR = mean full duration of the outages restored inside the period.
* silent in windows = SILENT time inside the station's scheduled broadcast windows.
* on battery = time in ON_BATTERY or BATTERY_LOW.
* broadcast delivered = union of logged broadcasts inside the period; in schedule = the part
  inside the windows; scheduled = the windows' length; hours by program source.
* coverage = share of the period with a known state (not UNKNOWN).
* goal met = availability >= goal (None when availability is unknown).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from collector.export.outages import DOWN_STATES, Outage, outages
from collector.export.spans import Span, clip, merge, overlap_ms, state_spans, total
from collector.health.availability import Transition, availability
from collector.health.events import State
from loaxa.payloads import ProgramSource

BATTERY_STATES = frozenset({State.ON_BATTERY, State.BATTERY_LOW})


@dataclass(frozen=True)
class BroadcastSpan:
    start_ms: int
    end_ms: int
    source: ProgramSource


@dataclass(frozen=True)
class Figures:
    """Figures for one station or commune over one period (all durations in exact ms)."""

    subject: str
    name: str
    commune: str
    period_ms: int
    availability_ratio: float | None
    goal_percent: float
    downtime_ms: int
    outages: list[Outage]
    maintenance_ms: int
    unknown_ms: int
    silent_in_window_ms: int
    battery_ms: int
    broadcast_ms: int
    broadcast_in_schedule_ms: int
    scheduled_ms: int
    source_ms: dict[ProgramSource, int] = field(default_factory=dict)
    stations: int = 1

    @property
    def availability_percent(self) -> float | None:
        r = self.availability_ratio
        return None if r is None else 100.0 * r

    @property
    def coverage_ratio(self) -> float:
        return 0.0 if self.period_ms <= 0 else (self.period_ms - self.unknown_ms) / self.period_ms

    @property
    def goal_met(self) -> bool | None:
        pct = self.availability_percent
        # compare in ratio space scaled exactly: 100 % goal means not one ms down
        return None if pct is None else pct >= self.goal_percent - 1e-9

    @property
    def longest_outage_ms(self) -> int:
        return max((o.in_period_ms for o in self.outages), default=0)

    @property
    def mttr_ms(self) -> float | None:
        restored = [o.duration_ms for o in self.outages if o.duration_ms is not None]
        return None if not restored else sum(restored) / len(restored)


def station_figures(
    subject: str,
    name: str,
    commune: str,
    timeline: Sequence[Transition],
    t0_ms: int,
    t1_ms: int,
    windows: Sequence[Span],
    broadcasts: Sequence[BroadcastSpan] = (),
    goal_percent: float = 100.0,
) -> Figures:
    """Figures of one station; ``timeline`` sorted, may hold transitions from before t0;
    ``windows`` the station's scheduled broadcast windows inside [t0, t1)."""
    avail = availability(timeline, t0_ms, t1_ms)
    wins = merge(clip(windows, t0_ms, t1_ms))
    silent = state_spans(timeline, {State.SILENT}, t0_ms, t1_ms)
    on_air = merge(clip(((b.start_ms, b.end_ms) for b in broadcasts), t0_ms, t1_ms))
    by_source: dict[ProgramSource, int] = {}
    for src in ProgramSource:
        spans = merge(
            clip(((b.start_ms, b.end_ms) for b in broadcasts if b.source == src), t0_ms, t1_ms)
        )
        if spans:
            by_source[src] = total(spans)
    return Figures(
        subject=subject,
        name=name,
        commune=commune,
        period_ms=t1_ms - t0_ms,
        availability_ratio=avail.ratio,
        goal_percent=goal_percent,
        downtime_ms=sum(avail.ms.get(s, 0) for s in DOWN_STATES),
        outages=outages(timeline, t0_ms, t1_ms, subject),
        maintenance_ms=avail.maintenance_ms,
        unknown_ms=avail.unknown_ms,
        silent_in_window_ms=overlap_ms(silent, wins),
        battery_ms=sum(avail.ms.get(s, 0) for s in BATTERY_STATES),
        broadcast_ms=total(on_air),
        broadcast_in_schedule_ms=overlap_ms(on_air, wins),
        scheduled_ms=total(wins),
        source_ms=by_source,
    )
