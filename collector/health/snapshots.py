"""Snapshot and restore of the engine's memory (JSON-ready dict, format version 1).

Holds what a restart must not forget: each station's condition, open incident, outage being
judged, sessions and recent (session, seq) keys, flap counts, upstream status, counters, and
the last timeline row (older rows are in InfluxDB).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from collector.health.availability import Transition
from collector.health.events import State
from collector.health.runtime import StationRuntime, runtime_from_dict, runtime_to_dict
from collector.health.upstreams import UpstreamStatus

SNAPSHOT_VERSION = 1


class SnapshotError(ValueError):
    """A snapshot that this version cannot restore."""


class EngineSnapshot:
    stations: dict[str, StationRuntime]
    upstreams: dict[str, UpstreamStatus]
    transitions: dict[str, list[Transition]]
    counters: Counter[str]

    def snapshot(self) -> dict[str, Any]:
        return {
            "version": SNAPSHOT_VERSION,
            "stations": {sid: runtime_to_dict(rt) for sid, rt in self.stations.items()},
            "upstreams": {
                uid: {"reported_ms": u.reported_ms, "inferred_ms": u.inferred_ms}
                for uid, u in self.upstreams.items()
            },
            "last_rows": {
                sid: [[t.ts_ms, t.state.value] for t in timeline[-1:]]
                for sid, timeline in self.transitions.items()
            },
            "counters": dict(self.counters),
        }

    def restore(self, snap: dict[str, Any]) -> None:
        """Load a snapshot; stations no longer in the inventory are dropped (and counted)."""
        if snap.get("version") != SNAPSHOT_VERSION:
            raise SnapshotError(
                f"snapshot version {snap.get('version')!r} is not {SNAPSHOT_VERSION}"
            )
        for sid, data in snap["stations"].items():
            if sid not in self.stations:
                self.counters["restore_dropped_station"] += 1
                continue
            self.stations[sid] = runtime_from_dict(data)
        for uid, data in snap["upstreams"].items():
            if uid in self.upstreams:
                self.upstreams[uid] = UpstreamStatus(**data)
        for sid, rows in snap["last_rows"].items():
            if sid in self.transitions:
                self.transitions[sid] = [Transition(sid, int(ts), State(s)) for ts, s in rows]
        self.counters.update(snap.get("counters", {}))
        self._pending_down = None  # stations replaced: the damping index is rebuilt
