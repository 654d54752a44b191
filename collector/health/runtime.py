"""What the engine remembers about one station between messages, and its (de)serialisation.

Plain data so ``HealthEngine.snapshot()`` can be stored (``store.py``) and restored after a
restart without forgetting or re-opening incidents.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from collector.health.events import Cause, Incident, State
from collector.health.flaps import FlapCounter
from collector.health.outage import Evidence
from collector.health.signals import AudioRuns


@dataclass
class Outage:
    """A DOWN period being tracked: from ``start`` until the link returned (``end``)."""

    start_ms: int
    anchor_ms: int  # the last live reading before the drop
    anchor_on_battery: bool = False
    end_ms: int | None = None  # reconnection; judged after the backfill settle time
    evidence: list[Evidence] = field(default_factory=list)
    evicted: int = 0  # readings the agent's full queue dropped (queue_evicted events)


@dataclass
class StationRuntime:
    state: State = State.UNKNOWN  # the underlying condition (maintenance is applied on top)
    reported: State = State.UNKNOWN  # what the timeline shows
    since_ms: int | None = None
    session: int = -1
    offline: bool = False  # the Last Will of the current session arrived
    last_rx_ms: int | None = None  # receive time of the newest message of any kind
    last_ts_ms: int | None = None  # payload time of the newest live reading
    on_battery: bool = False
    on_battery_since: int | None = None
    battery: list[tuple[int, float]] = field(default_factory=list)
    battery_warned: bool = False
    amp_fault: bool = False
    controller_lost: bool = False  # the agent reports its serial link to the MCU dead
    audio: AudioRuns = field(default_factory=AudioRuns)
    outage: Outage | None = None
    problem_since: int | None = None  # start of the current DOWN/SILENT condition
    incident: Incident | None = None
    flaps: FlapCounter = field(default_factory=FlapCounter)
    maintenance_until: int | None = None  # end of the maintenance window we are in
    seen: OrderedDict[tuple[int, int], None] = field(default_factory=OrderedDict)

    def remember(self, key: tuple[int, int], limit: int) -> bool:
        """Note a (session, seq); False if it was seen already (a duplicate)."""
        if key in self.seen:
            return False
        self.seen[key] = None
        while len(self.seen) > limit:
            self.seen.popitem(last=False)
        return True


SAVED_KEYS = 256


def incident_to_dict(inc: Incident) -> dict[str, Any]:
    return asdict(inc)


def incident_from_dict(d: dict[str, Any]) -> Incident:
    return Incident(**{**d, "state": State(d["state"]), "cause": Cause(d["cause"])})


def runtime_to_dict(rt: StationRuntime) -> dict[str, Any]:
    out = {f.name: getattr(rt, f.name) for f in fields(rt)}
    out["audio"] = asdict(rt.audio)
    out["flaps"] = asdict(rt.flaps)
    out["outage"] = asdict(rt.outage) if rt.outage else None
    out["incident"] = incident_to_dict(rt.incident) if rt.incident else None
    # the newest keys suffice to drop redelivered messages after a restart; keeps saves small
    out["seen"] = [list(k) for k in list(rt.seen)[-SAVED_KEYS:]]
    out["battery"] = [list(r) for r in rt.battery]
    return out


def runtime_from_dict(d: dict[str, Any]) -> StationRuntime:
    d = dict(d)
    outage = d.pop("outage")
    if outage is not None:
        outage["evidence"] = [Evidence(**e) for e in outage["evidence"]]
        outage = Outage(**outage)
    incident = d.pop("incident")
    return StationRuntime(
        **{
            **d,
            "state": State(d["state"]),
            "reported": State(d["reported"]),
            "battery": [(int(t), float(v)) for t, v in d["battery"]],
            "audio": AudioRuns(**d["audio"]),
            "flaps": FlapCounter(**d["flaps"]),
            "seen": OrderedDict(((int(a), int(b)), None) for a, b in d["seen"]),
            "outage": outage,
            "incident": incident_from_dict(incident) if incident else None,
        }
    )
