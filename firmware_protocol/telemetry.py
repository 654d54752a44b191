"""TELEMETRY (0x02): the station's periodic state, with 0..16 cluster records (SPEC.md 3.2).

Layout: 21 bytes of fixed fields, `u8 k`, then k records of 4 bytes. `k` is derived from
`len(clusters)`, so it is not a field of the dataclass (FP-MSG-6).
"""

from __future__ import annotations

import dataclasses
import struct
from dataclasses import dataclass
from typing import ClassVar, Self

from firmware_protocol.enums import (
    MAX_CLUSTERS,
    UNKNOWN_I8,
    UNKNOWN_I16,
    UNKNOWN_U16,
    AmpState,
    ClusterFlag,
    ClusterKind,
    MessageType,
    PowerFlag,
    known,
)
from firmware_protocol.errors import BadLengthError, FieldRangeError
from firmware_protocol.wire import FixedMessage, check_range


def _scaled(raw: int, sentinel: int, divisor: int) -> float | None:
    return None if raw == sentinel else raw / divisor


@dataclass(frozen=True, slots=True)
class ClusterRecord(FixedMessage):
    """One loudspeaker cluster: `u8 id, u8 kind, u8 flags, i8 rms` (whole dBFS)."""

    CODES: ClassVar[str] = "BBBb"

    id: int
    kind: int = ClusterKind.WIRED
    flags: int = 0
    rms: int = UNKNOWN_I8

    @property
    def rms_dbfs(self) -> int | None:
        return None if self.rms == UNKNOWN_I8 else self.rms

    @property
    def kind_enum(self) -> ClusterKind | None:
        return known(ClusterKind, self.kind)

    @property
    def relay_on(self) -> bool:
        return bool(self.flags & ClusterFlag.RELAY_ON)

    @property
    def fault(self) -> bool:
        return bool(self.flags & ClusterFlag.FAULT)

    @property
    def feed_ok(self) -> bool:
        return bool(self.flags & ClusterFlag.FEED_OK)


_RECORD = struct.Struct("<BBBb")


@dataclass(frozen=True, slots=True)
class Telemetry(FixedMessage):
    TYPE: ClassVar[MessageType] = MessageType.TELEMETRY
    CODES: ClassVar[str] = "IBhhHHBhHHB"  # the fixed fields; then u8 k and the records

    uptime_s: int = 0
    amp_state: int = AmpState.OFF
    audio_rms: int = UNKNOWN_I16
    audio_peak: int = UNKNOWN_I16
    mains: int = UNKNOWN_U16
    battery: int = UNKNOWN_U16
    power_flags: int = 0
    temperature: int = UNKNOWN_I16
    fm_forward: int = UNKNOWN_U16
    fm_reflected: int = UNKNOWN_U16
    reserved: int = 0
    clusters: tuple[ClusterRecord, ...] = ()

    FIXED_SIZE: ClassVar[int] = 22  # fixed fields + k

    def values(self) -> list[int]:
        """Fixed fields, k, then id, kind, flags, rms per cluster (the vectors' flat order)."""
        flat = [getattr(self, f.name) for f in dataclasses.fields(self)[:-1]]
        flat.append(len(self.clusters))
        for record in self.clusters:
            flat.extend(record.values())
        return flat

    def check(self) -> None:
        names = [f.name for f in dataclasses.fields(self)[:-1]]
        for name, code in zip(names, self.CODES, strict=True):
            check_range("Telemetry", name, code, getattr(self, name))
        if len(self.clusters) > MAX_CLUSTERS:
            raise FieldRangeError(
                f"Telemetry has {len(self.clusters)} clusters, at most {MAX_CLUSTERS} allowed"
            )
        for record in self.clusters:
            if not isinstance(record, ClusterRecord):
                raise FieldRangeError(f"Telemetry.clusters holds {record!r}, not a ClusterRecord")
            record.check()

    def pack(self) -> bytes:
        self.check()
        fixed = struct.pack("<" + self.CODES + "B", *self.values()[: len(self.CODES) + 1])
        return fixed + b"".join(_RECORD.pack(*r.values()) for r in self.clusters)

    @classmethod
    def unpack(cls, payload: bytes) -> Self:
        if len(payload) < cls.FIXED_SIZE:
            raise BadLengthError(
                f"Telemetry payload is {len(payload)} bytes, at least {cls.FIXED_SIZE} needed"
            )
        *fixed, k = struct.unpack_from("<" + cls.CODES + "B", payload)
        if k > MAX_CLUSTERS:
            raise BadLengthError(f"Telemetry k={k}, at most {MAX_CLUSTERS} allowed")
        expected = cls.FIXED_SIZE + _RECORD.size * k
        if len(payload) != expected:
            raise BadLengthError(
                f"Telemetry payload is {len(payload)} bytes, k={k} needs {expected}"
            )
        records = tuple(
            ClusterRecord(*_RECORD.unpack_from(payload, cls.FIXED_SIZE + _RECORD.size * i))
            for i in range(k)
        )
        return cls(*fixed, clusters=records)

    @property
    def amp(self) -> AmpState | None:
        return known(AmpState, self.amp_state)

    @property
    def audio_rms_dbfs(self) -> float | None:
        return _scaled(self.audio_rms, UNKNOWN_I16, 100)

    @property
    def audio_peak_dbfs(self) -> float | None:
        return _scaled(self.audio_peak, UNKNOWN_I16, 100)

    @property
    def mains_v(self) -> float | None:
        return _scaled(self.mains, UNKNOWN_U16, 10)

    @property
    def battery_v(self) -> float | None:
        return _scaled(self.battery, UNKNOWN_U16, 1000)

    @property
    def temperature_c(self) -> float | None:
        return _scaled(self.temperature, UNKNOWN_I16, 100)

    @property
    def fm_forward_w(self) -> float | None:
        return _scaled(self.fm_forward, UNKNOWN_U16, 10)

    @property
    def fm_reflected_w(self) -> float | None:
        return _scaled(self.fm_reflected, UNKNOWN_U16, 10)

    @property
    def on_battery(self) -> bool:
        return bool(self.power_flags & PowerFlag.ON_BATTERY)

    @property
    def mains_present(self) -> bool:
        return bool(self.power_flags & PowerFlag.MAINS_PRESENT)

    @property
    def door_open(self) -> bool:
        return bool(self.power_flags & PowerFlag.DOOR_OPEN)
