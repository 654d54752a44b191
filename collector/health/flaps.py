"""Flap damping: count link drops in a sliding window; one summary instead of alert pairs."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class FlapCounter:
    drops: list[int] = field(default_factory=list)  # start times of recent link drops (ms)
    last_summary_ms: int | None = None

    def count(self, now_ms: int, window_ms: int) -> int:
        self.drops = [t for t in self.drops if t > now_ms - window_ms]
        return len(self.drops)

    def flapping(self, now_ms: int, window_ms: int, threshold: int) -> bool:
        return self.count(now_ms, window_ms) >= threshold

    def drop(self, ts_ms: int, window_ms: int, threshold: int) -> int | None:
        """Record a drop; return the count when a FLAP_SUMMARY is due (once per window)."""
        self.drops.append(ts_ms)
        n = self.count(ts_ms, window_ms)
        if n < threshold:
            return None
        if self.last_summary_ms is not None and ts_ms - self.last_summary_ms < window_ms:
            return None
        self.last_summary_ms = ts_ms
        return n
