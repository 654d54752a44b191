"""Upstream dependencies: a serial gateway, relay or uplink several stations hang off.

An upstream is down when its owner says so (the serial gateway reports itself) or when at
least ``quorum`` of its stations (and ``min_children`` of them) are DOWN at the same time.
One UPSTREAM_DOWN event names it; children's incidents then carry cause UPSTREAM.
"""

from __future__ import annotations

from dataclasses import dataclass

from collector.health.events import HealthEvent, HealthEventKind


@dataclass
class UpstreamStatus:
    reported_ms: int | None = None  # the owner reported it down at this time
    inferred_ms: int | None = None  # most of its stations went down at this time

    @property
    def down(self) -> bool:
        return self.reported_ms is not None or self.inferred_ms is not None

    @property
    def since_ms(self) -> int | None:
        times = [t for t in (self.reported_ms, self.inferred_ms) if t is not None]
        return min(times) if times else None


def down_event(upstream: str, ts_ms: int, stations: list[str], how: str) -> HealthEvent:
    return HealthEvent(
        HealthEventKind.UPSTREAM_DOWN,
        ts_ms,
        None,
        None,
        upstream=upstream,
        details={"stations": stations, "detected_by": how},
    )


def restored_event(upstream: str, ts_ms: int, since_ms: int | None) -> HealthEvent:
    minutes = None if since_ms is None else round((ts_ms - since_ms) / 60_000, 1)
    return HealthEvent(
        HealthEventKind.UPSTREAM_RESTORED,
        ts_ms,
        None,
        None,
        upstream=upstream,
        details={"duration_min": minutes},
    )


def quorum_down(down: int, total: int, quorum: float, min_children: int) -> bool:
    return total >= min_children and down >= min_children and down / total >= quorum
