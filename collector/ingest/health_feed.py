"""Feeds the health engine (stored messages, gateway up/down, the clock) and publishes what it
decides: state/incident/compliance points to InfluxDB, incidents to the state store, events to
the alerts service.

The engine is pure and single-threaded; ``HealthFeed`` serialises every call with one lock
(MQTT worker, serial gateway threads and the scheduler all call in). A failing output is logged
and counted, never allowed to stop the others: the snapshot is saved even if InfluxDB's spool
refused the state points.
"""

from __future__ import annotations

import logging
import threading
import time
from bisect import bisect_right
from collections.abc import Sequence
from typing import Protocol

from collector.health.engine import HealthEngine
from collector.health.events import HealthEvent, HealthEventKind, State
from collector.health.fleet_view import FleetView, fleet_view
from collector.health.store import HealthStore
from collector.ingest.validate import Accepted
from collector.storage.points import compliance_point, incident_point, state_point

log = logging.getLogger("collector.health_feed")

_PHASE = {
    HealthEventKind.INCIDENT_OPENED: "open",
    HealthEventKind.INCIDENT_CLOSED: "close",
    HealthEventKind.INCIDENT_RECLASSIFIED: "reclassified",
}


class _Lines(Protocol):
    def append(self, lines: Sequence[str]) -> None: ...


class _Alerts(Protocol):
    def handle(self, event: HealthEvent) -> object: ...


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def perf_ms() -> float:
    return time.perf_counter() * 1000


# The snapshot is taken under the feed's lock, which ingest needs too: its share of the time is
# capped at 1 / SAVE_SPACING (after a save that took d ms, the next waits at least
# SAVE_SPACING x d). ~30 ms at 1k stations changes nothing; ~5 s at 100k stations saved at every
# tick with a change held ingest off most of the time (bench/SCALE.md).
SAVE_SPACING = 10


class HealthFeed:
    def __init__(
        self,
        engine: HealthEngine,
        store: HealthStore,
        storage: _Lines,
        alerts: _Alerts | None,
        compliance_every_ms: int = 60_000,
        quiet_save_every_ms: int = 30_000,
    ) -> None:
        self.engine, self.store, self.storage, self.alerts = engine, store, storage, alerts
        self.inventory = engine.inventory
        self.province = self.inventory.province.slug
        self._compliance_every_ms = compliance_every_ms
        self._compliance_ms = 0
        # The snapshot (every station, its dedupe keys) costs ~40 µs per station: saved at the
        # tick after any transition or event (what `loaxa status` shows), else every 30 s, and
        # never more often than SAVE_SPACING x its last cost allows.
        self._quiet_save_every_ms = quiet_save_every_ms
        self._saved_ms = 0
        self._save_cost_ms = 0.0
        self._changed = True
        self._lock = threading.Lock()
        self.output_errors = 0

    def observe(self, messages: Sequence[Accepted]) -> None:
        with self._lock:
            events: list[HealthEvent] = []
            for m in messages:
                events.extend(self.engine.observe(m.payload, m.received_ms))
            self._publish(events, now_ms())

    def upstream_state(self, upstream: str, up: bool, ts_ms: int) -> None:
        with self._lock:
            if up:
                events = self.engine.upstream_up(upstream, ts_ms)
            else:
                events = self.engine.upstream_down(upstream, ts_ms)
            self._publish(events, ts_ms)

    def view(self, at_ms: int | None = None) -> FleetView:
        """Read-only snapshot (states, open incidents, compliance) at ``at_ms`` (default: now),
        taken under the lock, for ``loaxa status``, the demo screen and /metrics."""
        with self._lock:
            return fleet_view(self.engine, now_ms() if at_ms is None else at_ms)

    def checkpoint(self, ts_ms: int) -> int:
        """Write every seen station's state at ``ts_ms`` (a local midnight) as a station_state
        point. The export trusts only points inside its period, so without this a station that
        stayed down for a whole month would show as "no data" instead of 0 %."""
        with self._lock:
            lines = []
            for sid, timeline in self.engine.transitions.items():
                i = bisect_right([t.ts_ms for t in timeline], ts_ms)
                if not i or timeline[i - 1].ts_ms == ts_ms:
                    continue  # never seen then, or a real transition is already at ts_ms
                t = timeline[i - 1]
                commune = self.inventory.stations[sid].commune
                down = t.state is State.LINK_DOWN
                lines.append(
                    state_point(ts_ms, self.province, commune, sid, t.state, t.cause, down)
                )
        self._write(lines)
        return len(lines)

    def tick(self) -> None:
        now = now_ms()
        with self._lock:
            self._publish(self.engine.tick(now), now)
            if now - self._compliance_ms >= self._compliance_every_ms:
                self._compliance_ms = now
                self._write(self._compliance_lines(now))
            due = self._changed or now - self._saved_ms >= self._quiet_save_every_ms
            if due and now - self._saved_ms >= SAVE_SPACING * self._save_cost_ms:
                started = perf_ms()
                self.store.save(self.engine.snapshot(), now)
                self._save_cost_ms = perf_ms() - started
                self._saved_ms, self._changed = now, False

    def _publish(self, events: list[HealthEvent], now: int) -> None:
        lines = []
        for t in self.engine.drain_transitions():
            commune = self.inventory.stations[t.station].commune
            down = t.state is State.LINK_DOWN
            lines.append(
                state_point(t.ts_ms, self.province, commune, t.station, t.state, t.cause, down)
            )
        for e in events:
            phase = _PHASE.get(e.kind)
            if phase and e.incident is not None:
                lines.append(incident_point(e.incident, self.province, phase, e.ts_ms))
        self._write(lines)
        if not events:
            self._changed = self._changed or bool(lines)
            return
        self._changed = True
        try:
            self.store.record_events(events, now)
        except Exception:
            self.output_errors += 1
            log.exception("recording %d health events in the state store failed", len(events))
        for e in events:
            log.info("health: %s %s %s", e.kind.value, e.station or e.upstream or "", e.details)
            if self.alerts is not None:
                self.alerts.handle(e)

    def _write(self, lines: list[str]) -> None:
        if not lines:
            return
        try:
            self.storage.append(lines)
        except Exception:  # spool full or failing: counted and logged, health goes on
            self.output_errors += 1
            log.exception("storing %d health points failed", len(lines))

    def _compliance_lines(self, now: int) -> list[str]:
        snap = self.engine.compliance(now)
        lines = []
        for code, c in snap.communes.items():
            if c.operating is None:
                continue  # everything required is in maintenance: counted neither way
            required = len(c.required) - len(c.maintenance)
            operating = required - len(c.failing)
            lines.append(
                compliance_point(now, self.province, code, operating, required, None, c.name)
            )
        lines.append(
            compliance_point(
                now,
                self.province,
                None,
                snap.operating,
                snap.counted,
                snap.goal_percent,
                self.inventory.province.name,
            )
        )
        return lines
