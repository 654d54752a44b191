"""Fixed-layout message plumbing: one struct format code per field, range-checked packing.

Every message in SPEC.md is a little-endian sequence of fixed-width integers; a subclass
names its fields (dataclass order == SPEC table order) and gives the struct codes, and gets
`pack()` / `unpack()` with specific errors for free.
"""

from __future__ import annotations

import dataclasses
import struct
from typing import Any, ClassVar, Self

from firmware_protocol.enums import MessageType
from firmware_protocol.errors import BadLengthError, FieldRangeError

# struct code -> inclusive range of the wire integer
RANGES: dict[str, tuple[int, int]] = {
    "B": (0, 0xFF),
    "b": (-0x80, 0x7F),
    "H": (0, 0xFFFF),
    "h": (-0x8000, 0x7FFF),
    "I": (0, 0xFFFF_FFFF),
    "Q": (0, 0xFFFF_FFFF_FFFF_FFFF),
}


def check_range(owner: str, name: str, code: str, value: Any) -> None:
    """Raise FieldRangeError unless `value` is an int that fits struct code `code`."""
    low, high = RANGES[code]
    if not isinstance(value, int) or isinstance(value, bool):
        raise FieldRangeError(f"{owner}.{name}={value!r} is not an integer")
    if not low <= value <= high:
        raise FieldRangeError(f"{owner}.{name}={value} out of range {low}..{high}")


class FixedMessage:
    """Mixin for frozen dataclasses whose payload is exactly `struct.Struct("<" + CODES)`."""

    TYPE: ClassVar[MessageType]
    CODES: ClassVar[str]  # one struct code per dataclass field, SPEC order

    @classmethod
    def _struct(cls) -> struct.Struct:
        return struct.Struct("<" + cls.CODES)

    def values(self) -> list[int]:
        """The raw wire integers in SPEC order (the flat form used by the vectors)."""
        return [getattr(self, f.name) for f in dataclasses.fields(self)]  # type: ignore[arg-type]

    def check(self) -> None:
        owner = type(self).__name__
        names = [f.name for f in dataclasses.fields(self)]  # type: ignore[arg-type]
        for name, code, value in zip(names, self.CODES, self.values(), strict=True):
            check_range(owner, name, code, value)

    def pack(self) -> bytes:
        self.check()
        return self._struct().pack(*self.values())

    @classmethod
    def unpack(cls, payload: bytes) -> Self:
        layout = cls._struct()
        if len(payload) != layout.size:
            raise BadLengthError(
                f"{cls.__name__} payload is {len(payload)} bytes, expected {layout.size}"
            )
        return cls(*layout.unpack(payload))
