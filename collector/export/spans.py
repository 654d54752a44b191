"""Interval arithmetic on half-open [start_ms, end_ms) spans; pure and exact (integer ms)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from collector.health.availability import Transition
from collector.health.events import Cause, State

Span = tuple[int, int]


def merge(spans: Iterable[Span]) -> list[Span]:
    """Sorted union of spans; overlapping or touching spans become one."""
    out: list[Span] = []
    for a, b in sorted(spans):
        if b <= a:
            continue
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def clip(spans: Iterable[Span], t0_ms: int, t1_ms: int) -> list[Span]:
    return [(max(a, t0_ms), min(b, t1_ms)) for a, b in spans if a < t1_ms and b > t0_ms]


def total(spans: Iterable[Span]) -> int:
    return sum(b - a for a, b in spans)


def overlap_ms(a: Sequence[Span], b: Sequence[Span]) -> int:
    """Length of the intersection of two merged (sorted, disjoint) span lists."""
    i = j = 0
    out = 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if lo < hi:
            out += hi - lo
        if a[i][1] <= b[j][1]:
            i += 1
        else:
            j += 1
    return out


def segments(
    transitions: Sequence[Transition], t1_ms: int
) -> Iterator[tuple[int, int, State, Cause | None]]:
    """(start, end, state, cause) runs of a sorted timeline up to ``t1_ms``; each transition
    holds until the next. Time before the first transition is not yielded (it is UNKNOWN)."""
    for k, tr in enumerate(transitions):
        if tr.ts_ms >= t1_ms:
            return
        end = transitions[k + 1].ts_ms if k + 1 < len(transitions) else t1_ms
        end = min(end, t1_ms)
        if end > tr.ts_ms:
            yield tr.ts_ms, end, tr.state, tr.cause


def state_spans(
    transitions: Sequence[Transition], states: set[State], t0_ms: int, t1_ms: int
) -> list[Span]:
    """Merged spans inside [t0, t1) where the timeline is in one of ``states``."""
    spans = [(a, b) for a, b, s, _ in segments(transitions, t1_ms) if s in states]
    return merge(clip(spans, t0_ms, t1_ms))
