"""A read-only picture of the fleet at one moment: what ``loaxa status``, the demo's live screen
and /metrics show, so none of them reaches into the engine's private memory.

Pure: built from a :class:`HealthEngine` and the time passed in. The daemon takes it under the
``HealthFeed`` lock (``HealthFeed.view``); ``loaxa status`` takes it from an engine restored
from the state store. Everything in it is a frozen copy: holding a view never races the engine.
"""

from __future__ import annotations

from dataclasses import dataclass

from collector.health.compliance import ComplianceSnapshot
from collector.health.engine import HealthEngine
from collector.health.events import Cause, Incident, State


@dataclass(frozen=True)
class StationView:
    station: str
    commune: str
    state: State  # as the timeline shows it (maintenance hides the condition under it)
    since_ms: int | None  # when the timeline entered ``state``; None: never seen
    condition: State  # the underlying condition (differs from ``state`` in maintenance)
    cause: Cause | None  # of the open incident, if any
    incident_id: str | None


@dataclass(frozen=True)
class FleetView:
    ts_ms: int
    stations: dict[str, StationView]
    open_incidents: tuple[Incident, ...]  # ordered by opening time
    compliance: ComplianceSnapshot
    upstreams_down: dict[str, int]  # upstream id -> down since (ms)

    def state_of(self, station: str) -> State:
        return self.stations[station].state


def fleet_view(engine: HealthEngine, now_ms: int) -> FleetView:
    """Snapshot of ``engine`` at ``now_ms``; the caller serialises access to the engine."""
    stations = {}
    for sid, rt in engine.stations.items():
        timeline = engine.transitions.get(sid) or []
        last = timeline[-1] if timeline else None
        inc = rt.incident
        stations[sid] = StationView(
            station=sid,
            commune=engine.inventory.stations[sid].commune,
            state=last.state if last else State.UNKNOWN,
            since_ms=last.ts_ms if last else None,
            condition=rt.state,
            cause=inc.cause if inc else None,
            incident_id=inc.id if inc else None,
        )
    incidents = sorted(engine.open_incidents(), key=lambda i: (i.opened_ms, i.id))
    down = {uid: u.since_ms for uid, u in engine.upstreams.items() if u.since_ms is not None}
    return FleetView(now_ms, stations, tuple(incidents), engine.compliance(now_ms), down)
