"""Write-ahead state for a partition: the engine snapshot and the alert router's state are saved
as soon as an incident opens, closes or changes, not only at the next tick.

Why: a partition moves to another process at any moment (kill -9 included). The new owner
restores the last saved state. Saved only at the tick (``daemon.health_tick_s``,
``daemon.alert_tick_s``), an incident alerted just before a crash is missing from what the new
owner restores: it detects the outage again and alerts a second time (seen in
tests/faults/test_f16_group_failover.py before this existed). With these wrappers the snapshot
is in SQLite before the alert is routed; the router state (codes handed out, open alerts) is
written by ``AlertService`` before any notification leaves (``AlertService.persist``).

Installed by the group member on each partition's ``Collector`` (``make_durable``), around the
store ``HealthFeed`` already calls (``store.record_events``): the feed is unchanged. The
snapshot is saved once per batch of events, whatever their number.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from collector.daemon import Collector
from collector.health.events import HealthEvent, HealthEventKind

_INCIDENT = {
    HealthEventKind.INCIDENT_OPENED,
    HealthEventKind.INCIDENT_CLOSED,
    HealthEventKind.INCIDENT_RECLASSIFIED,
    HealthEventKind.UPSTREAM_DOWN,
    HealthEventKind.UPSTREAM_RESTORED,
}


def _matters(events: Iterable[HealthEvent]) -> bool:
    return any(e.kind in _INCIDENT for e in events)


class SnapshotFirstStore:
    """The HealthStore as HealthFeed sees it: recording incident events also saves the engine
    snapshot (the caller holds the feed's lock, so the engine is not moving meanwhile)."""

    def __init__(self, inner: Any, collector: Collector) -> None:
        self._inner, self._collector = inner, collector
        self.saves = 0

    def record_events(self, events: list[HealthEvent], now_ms: int) -> None:
        self._inner.record_events(events, now_ms)
        if _matters(events):
            self._inner.save(self._collector.health.engine.snapshot(), now_ms)
            self.saves += 1

    def __getattr__(self, name: str) -> Any:  # save, load, close, incidents: the real store's
        return getattr(self._inner, name)


def make_durable(collector: Collector) -> None:
    """Install the snapshot-first store on a collector that has not started yet. (The alert
    router's state is written ahead of every send by ``AlertService`` itself, for any collector.)"""
    feed = collector.health
    feed.store = SnapshotFirstStore(feed.store, collector)
