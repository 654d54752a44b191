"""Judging an outage after the fact from the backfill the agent sent when it came back.

While a station is unreachable the collector can only call it DOWN. When the link returns, its
agent replays its offline queue (``backfill=true``, original timestamps). Each replayed reading
shows the station alive at that moment; the same rules as live data apply to it:

* a reading at ``t`` followed by the next one within ``down_after`` covers the gap between
  them (the station was on air: LINK_DOWN, or SILENT if quiet inside a window);
* after a longer gap the reading covers one report interval, then the station is DOWN (the
  live rule "down from the first missed report");
* the reading before the drop (``anchor``) and the reconnection close the chain;
* if the agent's queue overflowed (``queue_evicted``), its oldest readings, those right after
  the drop, are gone: the uncovered gap before the first surviving reading is UNKNOWN
  ("no data"), not DOWN: the station was producing readings we never got.

The result replaces the DOWN period's part of the timeline. Pure, no clock.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from collector.health.events import State
from collector.health.signals import AudioRuns


@dataclass(frozen=True)
class Evidence:
    """One replayed message: when, its audio (None = no level) and power as reported."""

    ts_ms: int
    quiet: bool | None = None
    on_battery: bool | None = None


@dataclass(frozen=True)
class Judgement:
    segments: list[tuple[int, State]]  # (start_ms, state) covering [start, end) in order
    on_battery_at_loss: bool  # the last reading before an uncovered gap said "on battery"

    @property
    def outage_start(self) -> int | None:
        """Start of the first part that really was off air (DOWN or SILENT), if any."""
        return next(
            (t for t, s in self.segments if not s.operating and s is not State.UNKNOWN), None
        )


def _points(
    evidence: Sequence[Evidence],
    window_of: Callable[[int], tuple[int, int] | None],
    silence_after_ms: int,
) -> list[tuple[int, State]]:
    """Replay readings in time order into (time, LINK_DOWN | SILENT) points."""
    runs = AudioRuns()
    points: list[tuple[int, State]] = []
    for ev in evidence:
        change = runs.feed(ev.ts_ms, ev.quiet, window_of(ev.ts_ms), silence_after_ms)
        if change is not None:
            points.append((change[0], State.SILENT if change[1] else State.LINK_DOWN))
        points.append((ev.ts_ms, State.SILENT if runs.silent else State.LINK_DOWN))
    return sorted(points)


def judge_outage(
    start_ms: int,
    end_ms: int,
    anchor_ms: int,
    evidence: Sequence[Evidence],
    *,
    interval_ms: int,
    down_after_ms: int,
    window_of: Callable[[int], tuple[int, int] | None],
    silence_after_ms: int,
    anchor_on_battery: bool = False,
    evicted: int = 0,
) -> Judgement:
    """Segments of [start, end) from the readings taken in it; ``anchor`` is the last live one."""
    inside = sorted(
        {e.ts_ms: e for e in evidence if anchor_ms < e.ts_ms < end_ms}.values(),
        key=lambda e: e.ts_ms,
    )
    points = [(anchor_ms, State.LINK_DOWN), *_points(inside, window_of, silence_after_ms)]
    spans: list[tuple[int, int, State]] = []
    lost_on_battery = False
    battery: bool | None = anchor_on_battery
    by_ts = {e.ts_ms: e for e in inside}
    for i, (ts, state) in enumerate(points):
        if ts in by_ts and by_ts[ts].on_battery is not None:
            battery = by_ts[ts].on_battery
        nxt = points[i + 1][0] if i + 1 < len(points) else end_ms
        if nxt - ts <= down_after_ms:
            spans.append((ts, nxt, state))
            continue
        spans.append((ts, min(ts + interval_ms, nxt), state))
        spans.append((ts + interval_ms, nxt, State.DOWN))
        lost_on_battery = lost_on_battery or bool(battery)
    if evicted > 0:  # the evicted readings were the oldest: they filled the first gap
        first = inside[0].ts_ms if inside else end_ms
        spans = [
            (a, b, State.UNKNOWN if s is State.DOWN and b <= first else s) for a, b, s in spans
        ]
    return Judgement(_clip_merge(spans, start_ms, end_ms), lost_on_battery)


def _clip_merge(
    spans: list[tuple[int, int, State]], start_ms: int, end_ms: int
) -> list[tuple[int, State]]:
    out: list[tuple[int, State]] = []
    for a, b, state in spans:
        a, b = max(a, start_ms), min(b, end_ms)
        if a >= b or (out and out[-1][1] == state):
            continue
        out.append((a, state))
    return out
