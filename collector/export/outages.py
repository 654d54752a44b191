"""Outages: maximal runs of DOWN or SILENT in a timeline, split at the period's bounds.

An outage starts at the first transition into DOWN/SILENT and ends at the first transition
into anything else (operating states, MAINTENANCE, UNKNOWN). Its true start may lie before the
period (the timeline carries transitions from before it); its part inside the period is what
the period's downtime counts, so consecutive months share an outage without double counting.
An outage still open at the period's end has ``end_ms = None`` ("continues").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from collector.export.spans import segments
from collector.health.availability import Transition
from collector.health.events import Cause, State

DOWN_STATES = frozenset({State.DOWN, State.SILENT})


@dataclass(frozen=True)
class Outage:
    subject: str  # station id (or commune code for commune timelines)
    start_ms: int  # true start, possibly before the period
    end_ms: int | None  # restoration time; None: still down at the period's end
    in_period_ms: int  # the part inside the period
    states: tuple[State, ...]  # DOWN and/or SILENT, in order of appearance
    causes: tuple[Cause, ...]  # causes in order of appearance (UNKNOWN when none was given)
    stations: tuple[str, ...] = ()  # commune outages: the stations that failed it

    @property
    def cause(self) -> Cause:
        """The main cause: the first one that is not UNKNOWN, else UNKNOWN."""
        return next((c for c in self.causes if c is not Cause.UNKNOWN), Cause.UNKNOWN)

    @property
    def duration_ms(self) -> int | None:
        return None if self.end_ms is None else self.end_ms - self.start_ms


def _add(seq: tuple, item: object) -> tuple:
    return seq if item in seq else (*seq, item)


def outages(
    transitions: Sequence[Transition], t0_ms: int, t1_ms: int, subject: str
) -> list[Outage]:
    """Outages overlapping [t0, t1) in a sorted timeline (which may start before t0)."""
    found: list[Outage] = []
    run: dict | None = None
    for a, b, state, cause in segments(transitions, t1_ms):
        if state in DOWN_STATES:
            if run is None:
                run = {"start": a, "states": (), "causes": ()}
            run["end"] = b
            run["states"] = _add(run["states"], state)
            run["causes"] = _add(run["causes"], cause or Cause.UNKNOWN)
            continue
        if run is not None:
            found.append(_close(run, t0_ms, t1_ms, subject, restored=True))
            run = None
    if run is not None:
        found.append(_close(run, t0_ms, t1_ms, subject, restored=run["end"] < t1_ms))
    return [o for o in found if o.in_period_ms > 0]


def _close(run: dict, t0_ms: int, t1_ms: int, subject: str, restored: bool) -> Outage:
    start, end = run["start"], run["end"]
    inside = max(0, min(end, t1_ms) - max(start, t0_ms))
    return Outage(
        subject=subject,
        start_ms=start,
        end_ms=end if restored else None,
        in_period_ms=inside,
        states=run["states"],
        causes=run["causes"],
    )
