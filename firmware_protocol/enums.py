"""Code tables of protocol version 1 (SPEC.md sections 2-4), as IntEnum / IntFlag.

Messages keep raw wire integers; these enums name them. A code a receiver does not know
stays a plain int (FP-MSG-5: unknown enum values are kept raw, never rejected).
"""

from __future__ import annotations

from enum import IntEnum, IntFlag
from typing import TypeVar

PROTOCOL_VERSION = 1

ADDRESS_MASTER = 0x0000
ADDRESS_BROADCAST = 0xFFFF

FLAG_ACK_REQUESTED = 0x01
FLAG_RESPONSE = 0x02
FLAGS_DEFINED = FLAG_ACK_REQUESTED | FLAG_RESPONSE

MAX_CLUSTERS = 16
STATION_WIDE_CLUSTER = 0xFF

# "unknown" sentinels (SPEC.md section 2)
UNKNOWN_I16 = -0x8000
UNKNOWN_U16 = 0xFFFF
UNKNOWN_I8 = -0x80


class MessageType(IntEnum):
    HELLO = 0x01
    TELEMETRY = 0x02
    EVENT = 0x03
    PLAYBACK = 0x04
    ACK = 0x05
    NACK = 0x06
    POLL = 0x10
    TIME_SYNC = 0x11


class Capability(IntFlag):
    WIRED = 0x01
    FM_TX = 0x02
    IP = 0x04
    BATTERY = 0x08
    TEMP = 0x10
    AUDIO_LEVEL = 0x20
    DOOR = 0x40
    RTC = 0x80


class AmpState(IntEnum):
    OFF = 0
    ON = 1
    FAULT = 2
    PROTECT = 3


class PowerFlag(IntFlag):
    ON_BATTERY = 0x01
    MAINS_PRESENT = 0x02
    DOOR_OPEN = 0x04


class ClusterKind(IntEnum):
    WIRED = 0
    FM = 1
    IP = 2


class ClusterFlag(IntFlag):
    RELAY_ON = 0x01
    FAULT = 0x02
    FEED_OK = 0x04


class EventCode(IntEnum):
    POWER_LOST = 1
    POWER_RESTORED = 2
    AMP_FAULT = 3
    AMP_RECOVERED = 4
    REBOOT = 5
    DOOR_OPEN = 6
    DOOR_CLOSED = 7
    BATTERY_LOW = 8
    OVER_TEMPERATURE = 9


class PlaybackAction(IntEnum):
    STOP = 0
    START = 1


class Source(IntEnum):
    OTHER = 0
    PROVINCIAL_RELAY = 1
    NATIONAL_RELAY = 2
    LOCAL_BULLETIN = 3
    FM_REBROADCAST = 4


class Priority(IntEnum):
    NORMAL = 0
    PRIORITY = 1
    EMERGENCY = 2


class NackReason(IntEnum):
    CRC = 1
    UNKNOWN_TYPE = 2
    BAD_LENGTH = 3
    UNSUPPORTED_VERSION = 4
    BUSY = 5
    BAD_VALUE = 6


E = TypeVar("E", bound=IntEnum)


def known(enum: type[E], raw: int) -> E | None:
    """`enum(raw)`, or None for a code this version does not define."""
    try:
        return enum(raw)
    except ValueError:
        return None
