"""JSON payloads published by agents, schema version 1 (documented in docs/PAYLOADS.md).

Every payload carries ``v`` (schema version), ``station``, ``session`` (the agent's connection
counter, like Sparkplug's bdSeq), ``seq`` (the agent's message counter, one sequence across all
kinds, persisted, so a gap reveals lost messages) and ``ts`` (milliseconds since the Unix epoch,
UTC, the time the reading was taken, kept unchanged when the message is replayed later).
``backfill`` is true when the message waited in the agent's offline queue.

The agent builds payloads with these models; the collector validates with them. Unknown keys
are rejected so a typo is an error, not silently dropped data.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

SCHEMA_VERSION = 1
MAX_PAYLOAD_BYTES = 16 * 1024
MAX_CLUSTERS = 16

INT64_MAX = 2**63 - 1  # InfluxDB stores integers as int64: a larger one would fail the write
Int64 = Annotated[int, Field(ge=-INT64_MAX - 1, le=INT64_MAX)]
Dbfs = Annotated[float, Field(ge=-200.0, le=0.0)]
StationId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    v: Literal[1] = SCHEMA_VERSION
    station: StationId
    session: Annotated[int, Field(ge=0, le=INT64_MAX)]
    seq: Annotated[int, Field(ge=0, le=INT64_MAX)]
    ts: Annotated[int, Field(ge=0, le=INT64_MAX, description="ms since Unix epoch, UTC")]
    backfill: bool = False


class AmpState(StrEnum):
    OFF = "off"
    ON = "on"
    FAULT = "fault"
    PROTECT = "protect"
    UNKNOWN = "unknown"


class ClusterKind(StrEnum):
    WIRED = "wired"
    FM = "fm"
    IP = "ip"


class Audio(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    rms_dbfs: Dbfs | None = None  # None: no level available
    peak_dbfs: Dbfs | None = None
    clip_ratio: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0
    silent: bool = False  # below the silence threshold for longer than the hold time
    source: Literal["pcm", "mcu", "none"] = "mcu"
    acoustic_dbfs: Dbfs | None = None  # microphone near a loudspeaker cluster, if fitted
    acoustic_corr: Annotated[float, Field(ge=-1.0, le=1.0)] | None = None


class Power(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    mains_v: Annotated[float, Field(ge=0.0, le=500.0)] | None = None
    battery_v: Annotated[float, Field(ge=0.0, le=100.0)] | None = None
    on_battery: bool = False


class Fm(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    forward_w: Annotated[float, Field(ge=0.0, le=10000.0)]
    reflected_w: Annotated[float, Field(ge=0.0, le=10000.0)]


class Cluster(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: Annotated[int, Field(ge=0, le=255)]
    kind: ClusterKind
    relay_on: bool
    fault: bool = False
    feed_ok: bool = True
    rms_dbfs: Dbfs | None = None


class Telemetry(_Payload):
    kind: Literal["telemetry"] = "telemetry"
    controller: Literal["ok", "unreachable"] = "ok"
    uptime_s: Annotated[int, Field(ge=0, le=INT64_MAX)] | None = None  # controller (MCU) uptime
    agent_uptime_s: Annotated[int, Field(ge=0, le=INT64_MAX)]
    amp: AmpState = AmpState.UNKNOWN
    audio: Audio = Audio()
    power: Power = Power()
    temp_c: Annotated[float, Field(ge=-60.0, le=150.0)] | None = None
    fm: Fm | None = None
    clusters: Annotated[list[Cluster], Field(max_length=MAX_CLUSTERS)] = []


class EventCode(StrEnum):
    POWER_LOST = "power_lost"
    POWER_RESTORED = "power_restored"
    AMP_FAULT = "amp_fault"
    AMP_RECOVERED = "amp_recovered"
    REBOOT = "reboot"
    DOOR_OPEN = "door_open"
    DOOR_CLOSED = "door_closed"
    BATTERY_LOW = "battery_low"
    OVER_TEMPERATURE = "over_temperature"
    CONTROLLER_LOST = "controller_lost"  # agent: serial link to the MCU dead
    CONTROLLER_FOUND = "controller_found"
    QUEUE_EVICTED = "queue_evicted"  # agent: offline queue dropped oldest messages (value=count)
    UNKNOWN = "unknown"


class Event(_Payload):
    kind: Literal["event"] = "event"
    code: EventCode
    raw_code: Annotated[int, Field(ge=0, le=255)] | None = None  # MCU code, kept when unknown
    cluster: Annotated[int, Field(ge=0, le=255)] | None = None  # None: whole station
    value: Int64 | None = None
    origin: Literal["mcu", "agent"] = "mcu"


class ProgramSource(StrEnum):
    PROVINCIAL_RELAY = "provincial_relay"
    NATIONAL_RELAY = "national_relay"
    LOCAL_BULLETIN = "local_bulletin"
    FM_REBROADCAST = "fm_rebroadcast"
    OTHER = "other"


class Priority(StrEnum):
    """Bulletin priority as in Circular 39/2020/TT-BTTTT."""

    NORMAL = "normal"
    PRIORITY = "priority"
    EMERGENCY = "emergency"


class Broadcast(_Payload):
    """Broadcast log entry: ``start`` when a program begins, ``stop`` (with start_ts) at its end."""

    kind: Literal["broadcast"] = "broadcast"
    action: Literal["start", "stop"]
    source: ProgramSource = ProgramSource.OTHER
    priority: Priority = Priority.NORMAL
    clusters: Annotated[list[int], Field(max_length=MAX_CLUSTERS)] = []
    start_ts: Annotated[int, Field(ge=0, le=INT64_MAX)]
    end_ts: Annotated[int, Field(ge=0, le=INT64_MAX)] | None = None
    detected_by: Literal["mcu", "audio"] = "mcu"


class Status(_Payload):
    """Retained. ``online`` on connect; the Last Will ``offline`` carries the same session.

    A collector keeps the highest session seen per station and ignores an ``offline`` whose
    session is lower than the current ``online`` (a stale Will delivered late).
    """

    kind: Literal["status"] = "status"
    state: Literal["online", "offline"]
    agent_version: str | None = None
    firmware: str | None = None
    hardware: str | None = None
    device_id: Int64 | None = None
    reason: str | None = None  # "graceful" when the agent stopped on purpose


AnyPayload = Annotated[Telemetry | Event | Broadcast | Status, Field(discriminator="kind")]
ANY_PAYLOAD: TypeAdapter[Telemetry | Event | Broadcast | Status] = TypeAdapter(AnyPayload)


def to_json(payload: _Payload) -> bytes:
    return payload.model_dump_json(exclude_none=True).encode()
