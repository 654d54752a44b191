"""Availability arithmetic: time per state from a station's transitions, shared with exports.

A station's timeline is a list of :class:`Transition` sorted by time; each holds until the
next one. Before the first transition the state is UNKNOWN. Sums are exact integers in ms
(``seconds`` divides by 1000 exactly, so whole-second inputs give whole seconds); UNKNOWN time
is kept apart, never counted as up or down.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from collector.health.events import Cause, State


@dataclass(frozen=True)
class Transition:
    station: str
    ts_ms: int
    state: State
    cause: Cause | None = None  # for non-operating states, the incident's cause when known


@dataclass(frozen=True)
class Availability:
    t0_ms: int
    t1_ms: int
    ms: dict[State, int] = field(default_factory=dict)

    @property
    def seconds(self) -> dict[State, float]:
        return {state: ms / 1000 for state, ms in self.ms.items()}

    @property
    def operating_ms(self) -> int:
        return sum(ms for state, ms in self.ms.items() if state.operating)

    @property
    def unknown_ms(self) -> int:
        return self.ms.get(State.UNKNOWN, 0)

    @property
    def maintenance_ms(self) -> int:
        return self.ms.get(State.MAINTENANCE, 0)

    @property
    def ratio(self) -> float | None:
        """Operating share of the time with known state, maintenance excluded; None if none."""
        known = self.t1_ms - self.t0_ms - self.unknown_ms - self.maintenance_ms
        return None if known <= 0 else self.operating_ms / known


def availability(transitions: Sequence[Transition], t0_ms: int, t1_ms: int) -> Availability:
    """Time spent in each state during [t0, t1) given one station's sorted transitions."""
    if t1_ms < t0_ms:
        raise ValueError(f"t1 ({t1_ms}) is before t0 ({t0_ms})")
    totals: dict[State, int] = {}
    state, since = State.UNKNOWN, t0_ms
    for tr in transitions:
        if tr.ts_ms >= t1_ms:
            break
        if tr.ts_ms > since:
            totals[state] = totals.get(state, 0) + tr.ts_ms - since
            since = tr.ts_ms
        state = tr.state
    if t1_ms > since:
        totals[state] = totals.get(state, 0) + t1_ms - since
    return Availability(t0_ms, t1_ms, {s: ms for s, ms in totals.items() if ms > 0})
