"""Message classes of protocol version 1 and the registry type code -> class (SPEC.md 3).

Fields are raw wire integers in SPEC table order; properties give physical units or enums.
`decode_message` turns (type, payload) into a message; a type code with no class becomes
`Unknown(type, payload)` so a receiver can still answer it with NACK reason 2 (FP-VER-3).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from firmware_protocol.enums import (
    STATION_WIDE_CLUSTER,
    Capability,
    EventCode,
    MessageType,
    NackReason,
    PlaybackAction,
    Priority,
    Source,
    known,
)
from firmware_protocol.errors import FieldRangeError, PayloadSizeError, UnknownTypeError
from firmware_protocol.telemetry import Telemetry
from firmware_protocol.wire import FixedMessage

MAX_PAYLOAD = 247


@dataclass(frozen=True, slots=True)
class Hello(FixedMessage):
    TYPE: ClassVar[MessageType] = MessageType.HELLO
    CODES: ClassVar[str] = "IBBBBHBH"

    device_id: int
    fw_major: int = 0
    fw_minor: int = 0
    fw_patch: int = 0
    hw_rev: int = 0
    capabilities: int = 0
    n_clusters: int = 0
    max_proto: int = 1

    @property
    def firmware_version(self) -> str:
        return f"{self.fw_major}.{self.fw_minor}.{self.fw_patch}"

    @property
    def capability_flags(self) -> Capability:
        return Capability(self.capabilities & 0xFF)


@dataclass(frozen=True, slots=True)
class Event(FixedMessage):
    TYPE: ClassVar[MessageType] = MessageType.EVENT
    CODES: ClassVar[str] = "BBIhB"

    code: int
    cluster: int = STATION_WIDE_CLUSTER
    uptime_s: int = 0
    value: int = 0
    reserved: int = 0

    @property
    def event_code(self) -> EventCode | None:
        return known(EventCode, self.code)

    @property
    def station_wide(self) -> bool:
        return self.cluster == STATION_WIDE_CLUSTER


@dataclass(frozen=True, slots=True)
class Playback(FixedMessage):
    TYPE: ClassVar[MessageType] = MessageType.PLAYBACK
    CODES: ClassVar[str] = "BBBHIB"

    action: int
    source: int = Source.OTHER
    priority: int = Priority.NORMAL
    cluster_mask: int = 0
    uptime_s: int = 0
    reserved: int = 0

    @property
    def started(self) -> bool:
        return self.action == PlaybackAction.START

    @property
    def source_enum(self) -> Source | None:
        return known(Source, self.source)

    @property
    def priority_enum(self) -> Priority | None:
        return known(Priority, self.priority)

    @property
    def cluster_ids(self) -> tuple[int, ...]:
        return tuple(i for i in range(16) if self.cluster_mask >> i & 1)


@dataclass(frozen=True, slots=True)
class Ack(FixedMessage):
    TYPE: ClassVar[MessageType] = MessageType.ACK
    CODES: ClassVar[str] = "HB"

    acked_seq: int
    acked_type: int


@dataclass(frozen=True, slots=True)
class Nack(FixedMessage):
    TYPE: ClassVar[MessageType] = MessageType.NACK
    CODES: ClassVar[str] = "HBB"

    nacked_seq: int
    nacked_type: int
    reason: int

    @property
    def reason_enum(self) -> NackReason | None:
        return known(NackReason, self.reason)


@dataclass(frozen=True, slots=True)
class Poll(FixedMessage):
    TYPE: ClassVar[MessageType] = MessageType.POLL
    CODES: ClassVar[str] = "B"

    requested_type: int = MessageType.TELEMETRY


@dataclass(frozen=True, slots=True)
class TimeSync(FixedMessage):
    TYPE: ClassVar[MessageType] = MessageType.TIME_SYNC
    CODES: ClassVar[str] = "Qh"

    unix_ms: int
    tz_offset_min: int = 420


@dataclass(frozen=True, slots=True)
class Unknown:
    """A message whose type code this codec does not know; payload kept verbatim."""

    type: int
    payload: bytes = b""

    def values(self) -> list[int]:
        return list(self.payload)

    def pack(self) -> bytes:
        if not isinstance(self.type, int) or not 0 <= self.type <= 0xFF:
            raise FieldRangeError(f"Unknown.type={self.type!r} out of range 0..255")
        if self.type in REGISTRY:
            raise FieldRangeError(
                f"Unknown.type={self.type:#04x} is {MessageType(self.type).name}; use its class"
            )
        if len(self.payload) > MAX_PAYLOAD:
            raise PayloadSizeError(
                f"Unknown payload is {len(self.payload)} bytes, at most {MAX_PAYLOAD}"
            )
        return bytes(self.payload)


Message = Hello | Telemetry | Event | Playback | Ack | Nack | Poll | TimeSync | Unknown

REGISTRY: dict[int, type[FixedMessage]] = {
    cls.TYPE: cls for cls in (Hello, Telemetry, Event, Playback, Ack, Nack, Poll, TimeSync)
}


def message_type(message: Message) -> int:
    """The wire type code of `message`."""
    return message.type if isinstance(message, Unknown) else int(message.TYPE)


def decode_message(type_code: int, payload: bytes, *, allow_unknown: bool = True) -> Message:
    """Payload -> message. BadLengthError on a wrong size; an unregistered type becomes
    `Unknown` (or UnknownTypeError when `allow_unknown` is False)."""
    cls = REGISTRY.get(type_code)
    if cls is None:
        if not allow_unknown:
            raise UnknownTypeError(f"unknown message type {type_code:#04x}")
        return Unknown(type_code, bytes(payload))
    return cls.unpack(bytes(payload))  # type: ignore[return-value]
