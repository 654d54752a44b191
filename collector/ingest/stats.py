"""Counters of the ingest path, read by ``/metrics`` and ``/healthz`` at scrape time.

Plain counters under one lock, updated once per batch, so the hot path never touches the
Prometheus client. Rejections are logged with their reason, at most once per reason per
``log_every_s`` (with the number suppressed in between), so a misbehaving agent cannot flood
the log.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from collector.ingest.validate import Accepted, Rejected, RejectReason

log = logging.getLogger("collector.ingest")
_MAX_UNKNOWN = 1000


@dataclass
class StationClock:
    skew_ms: int  # latest receive time minus reading time, live (non-backfill) messages only
    seen_ms: int
    rejected: bool = False  # from a message refused for its timestamp (too old / in the future)


class IngestStats:
    def __init__(self, log_every_s: float = 10.0, skew_warn_ms: int = 60_000) -> None:
        self._lock = threading.Lock()
        self.accepted: Counter[str] = Counter()  # by kind
        self.rejected: Counter[RejectReason] = Counter()
        self.unknown_stations: dict[str, int] = {}  # station -> last seen (ms)
        self.clocks: dict[str, StationClock] = {}
        self.last_accepted_ms: int | None = None
        self._log_every_s = log_every_s
        self._skew_warn_ms = skew_warn_ms
        self._last_log: dict[RejectReason, float] = {}
        self._suppressed: Counter[RejectReason] = Counter()
        self._skew_warned: set[str] = set()

    def record(self, results: Iterable[Accepted | Rejected], source: str) -> None:
        rejects: list[Rejected] = []
        skewed: list[tuple[str, int]] = []
        with self._lock:
            for r in results:
                if isinstance(r, Accepted):
                    self.accepted[r.kind.value] += 1
                    self.last_accepted_ms = r.received_ms
                    skew = r.skew_ms
                    if skew is not None:
                        self.clocks[r.station] = StationClock(skew, r.received_ms)
                        if self._skew_changed(r.station, skew):
                            skewed.append((r.station, skew))
                else:
                    self.rejected[r.reason] += 1
                    rejects.append(r)
                    if r.reason is RejectReason.UNKNOWN_STATION and r.station:
                        self._unknown(r.station)
                    if r.skew_ms is not None and r.station:
                        now = int(time.time() * 1000)
                        self.clocks[r.station] = StationClock(r.skew_ms, now, rejected=True)
        for r in rejects:
            self._log_reject(r, source)
        for station, skew in skewed:
            log.warning(
                "station %s clock off by %.1f s (receive time - reading time)", station, skew / 1000
            )

    def _unknown(self, station: str) -> None:
        # Ids come from untrusted topics: keep a bounded set (the newest), for the log and /healthz.
        if station not in self.unknown_stations and len(self.unknown_stations) >= _MAX_UNKNOWN:
            oldest = min(self.unknown_stations, key=self.unknown_stations.__getitem__)
            del self.unknown_stations[oldest]
        self.unknown_stations[station] = int(time.time() * 1000)

    def snapshot(self) -> tuple[dict[str, int], dict[RejectReason, int], dict[str, int]]:
        """(accepted by kind, rejected by reason, clock skew ms by station), consistent."""
        with self._lock:
            skews = {s: c.skew_ms for s, c in self.clocks.items()}
            return dict(self.accepted), dict(self.rejected), skews

    def rejected_clocks(self, since_ms: int) -> dict[str, int]:
        """Skew (ms) of stations whose latest message, seen after ``since_ms``, was refused for
        its timestamp: their readings are not stored, so the skew is all a dashboard can show."""
        with self._lock:
            return {
                s: c.skew_ms for s, c in self.clocks.items() if c.rejected and c.seen_ms > since_ms
            }

    def _log_reject(self, r: Rejected, source: str) -> None:
        now = time.monotonic()
        last = self._last_log.get(r.reason)
        if last is not None and now - last < self._log_every_s:
            self._suppressed[r.reason] += 1
            return
        self._last_log[r.reason] = now
        more = self._suppressed.pop(r.reason, 0)
        note = f" ({more} more {r.reason.value} rejects not logged)" if more else ""
        log.warning("rejected from %s: %s: %s%s", source, r.reason.value, r.detail, note)

    def _skew_changed(self, station: str, skew_ms: int) -> bool:
        """True when a station's clock newly crosses the warning threshold (log once)."""
        if abs(skew_ms) <= self._skew_warn_ms:
            self._skew_warned.discard(station)
            return False
        if station in self._skew_warned:
            return False
        self._skew_warned.add(station)
        return True
