"""Counters and gauges of the storage path, as plain attributes and a ``snapshot()`` dict.

Names follow Prometheus habits (``_total`` counters) so collector/http.py can export them as is.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class StorageMetrics:
    points_written_total: int = 0
    batches_written_total: int = 0
    write_seconds_total: float = 0.0  # sum of successful write latencies
    last_write_seconds: float = 0.0
    retries_total: int = 0
    splits_total: int = 0  # 413 -> halves
    last_backoff_s: float = 0.0  # the delay chosen after the last failure (Retry-After or backoff)
    rejects_total: Counter[str] = field(default_factory=Counter)  # by reason, dead-lettered
    alarms_total: Counter[str] = field(default_factory=Counter)  # by alarm kind
    alarm_active: str | None = None  # the current alarm, None once a write succeeds
    last_error: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def written(self, points: int, seconds: float) -> None:
        with self._lock:
            self.points_written_total += points
            self.batches_written_total += 1
            self.write_seconds_total += seconds
            self.last_write_seconds = seconds
            self.alarm_active = None

    def rejected(self, reason: str, count: int = 1) -> None:
        with self._lock:
            self.rejects_total[reason] += count

    def alarm(self, kind: str, message: str) -> None:
        with self._lock:
            self.alarms_total[kind] += 1
            self.alarm_active = kind
            self.last_error = message

    def snapshot(self, spool_depth: int = 0, spool_bytes: int = 0) -> dict[str, object]:
        with self._lock:
            return {
                "points_written_total": self.points_written_total,
                "batches_written_total": self.batches_written_total,
                "write_seconds_total": self.write_seconds_total,
                "last_write_seconds": self.last_write_seconds,
                "retries_total": self.retries_total,
                "splits_total": self.splits_total,
                "last_backoff_s": self.last_backoff_s,
                "rejects_total": dict(self.rejects_total),
                "alarms_total": dict(self.alarms_total),
                "alarm_active": self.alarm_active,
                "last_error": self.last_error,
                "spool_depth": spool_depth,
                "spool_bytes": spool_bytes,
            }
