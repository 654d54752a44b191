"""What the health engine tells the rest of the collector (contract between health/ and alerts/).

Plain frozen dataclasses, no I/O. Times are ms since the Unix epoch (UTC).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class State(StrEnum):
    OPERATING = "operating"
    DOWN = "down"  # no data for down_after_intervals x interval, or Last Will "offline"
    SILENT = "silent"  # powered but below the silence threshold inside a broadcast window
    ON_BATTERY = "on_battery"  # operating on battery (counts as operating)
    BATTERY_LOW = "battery_low"  # on battery and below battery_low_v (counts as operating)
    LINK_DOWN = "link_down"  # unreachable but backfill shows it kept broadcasting
    MAINTENANCE = "maintenance"  # inside a declared maintenance window
    UNKNOWN = "unknown"  # never seen (or no data at all for the period)

    @property
    def operating(self) -> bool:
        return self in _OPERATING


_OPERATING = {State.OPERATING, State.ON_BATTERY, State.BATTERY_LOW, State.LINK_DOWN}


class Cause(StrEnum):
    POWER = "power"  # mains lost, battery ran flat
    NETWORK = "network"  # link lost while the station had power
    EQUIPMENT = "equipment"  # amplifier fault event
    AUDIO_CHAIN = "audio_chain"  # powered and connected but silent
    UPSTREAM = "upstream"  # a shared gateway/relay the station depends on failed
    UNKNOWN = "unknown"


class HealthEventKind(StrEnum):
    INCIDENT_OPENED = "incident_opened"
    INCIDENT_CLOSED = "incident_closed"  # recovery: carries the outage length
    INCIDENT_RECLASSIFIED = "incident_reclassified"  # e.g. link down, station was on air
    FLAP_SUMMARY = "flap_summary"  # "flapped 7 times in the last hour"
    UNSCHEDULED_BROADCAST = "unscheduled_broadcast"
    BATTERY_WARNING = "battery_warning"  # estimated time left before running flat
    CONTROLLER_LOST = "controller_lost"  # agent up, controller MCU unreachable: on air unknown
    UPSTREAM_DOWN = "upstream_down"  # one grouped alert naming the upstream
    UPSTREAM_RESTORED = "upstream_restored"


@dataclass(frozen=True)
class Incident:
    id: str  # stable: f"{station}:{opened_ms}" so a replay does not create a second one
    station: str
    commune: str
    state: State  # the non-operating state that opened it
    cause: Cause
    opened_ms: int
    closed_ms: int | None = None
    upstream: str | None = None
    maintenance: bool = False

    @property
    def duration_ms(self) -> int | None:
        return None if self.closed_ms is None else self.closed_ms - self.opened_ms


@dataclass(frozen=True)
class HealthEvent:
    kind: HealthEventKind
    ts_ms: int
    station: str | None  # None for upstream-level events
    commune: str | None
    incident: Incident | None = None
    upstream: str | None = None
    details: dict[str, object] = field(default_factory=dict)  # template variables
