"""The pipeline's sink in the daemon: accepted messages -> line protocol -> durable spool.

``append`` returns once ``Storage.append`` (SQLite spool, fsync) returned: only then does the
MQTT input acknowledge. Then ``on_stored`` (the health engine) sees the messages; its failure is
logged and counted but never undoes or repeats the append (the data is safe; a health bug must
not make the broker redeliver).

Clock skew is written as a point at most once per station per ``skew_every_ms`` (a dashboard
needs the trend, not one point per message).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Protocol

from collector.ingest.validate import Accepted
from collector.storage.points import clock_skew_point, points_for_payload

log = logging.getLogger("collector.ingest")


class _Storage(Protocol):
    def append(self, lines: Sequence[str]) -> None: ...


class StorageSink:
    def __init__(
        self,
        storage: _Storage,
        on_stored: Callable[[Sequence[Accepted]], None] | None = None,
        skew_every_ms: int = 60_000,
    ) -> None:
        self._storage = storage
        self._on_stored = on_stored
        self._skew_every_ms = skew_every_ms
        self._skew_written: dict[str, int] = {}
        self.after_store_errors = 0

    def prepare(self, messages: Sequence[Accepted]) -> list[str]:
        """The line protocol of ``messages`` (and their clock-skew points): no I/O."""
        lines: list[str] = []
        for m in messages:
            lines.extend(points_for_payload(m.payload, m.province, m.commune))
            skew = m.skew_ms
            if skew is not None and self._skew_due(m.station, m.received_ms):
                lines.append(
                    clock_skew_point(m.received_ms, m.province, m.commune, m.station, skew)
                )
        return lines

    def append(self, messages: Sequence[Accepted], lines: list[str] | None = None) -> None:
        """Spool ``lines`` (default: ``prepare(messages)``), then tell ``on_stored``."""
        self._storage.append(self.prepare(messages) if lines is None else lines)
        if self._on_stored is None:
            return
        try:
            self._on_stored(messages)
        except Exception:  # stored already: never make the source retry because of this
            self.after_store_errors += 1
            log.exception("processing %d stored messages failed", len(messages))

    def _skew_due(self, station: str, now_ms: int) -> bool:
        last = self._skew_written.get(station)
        if last is not None and now_ms - last < self._skew_every_ms:
            return False
        self._skew_written[station] = now_ms
        return True
