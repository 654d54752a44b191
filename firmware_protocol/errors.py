"""One exception tree for the controller protocol codec (SPEC.md section 7).

The decoder raises the subclass that names what was wrong with a frame; `StreamDecoder`
catches them, counts them per class and keeps going. Encoding errors are programming errors
in the sender (a value that does not fit its wire field) and are never swallowed.
"""

from __future__ import annotations

from typing import Any


class ProtocolError(Exception):
    """Base of every error raised by `firmware_protocol`.

    `header` is the frame's `Header` when it passed the CRC check (so a receiver may NACK
    it, FP-VER-2, FP-MSG-2), else None.
    """

    def __init__(self, *args: object, header: Any = None) -> None:
        super().__init__(*args)
        self.header = header


class CobsError(ProtocolError):
    """The run between two delimiters is not valid COBS (FP-FRAME-4)."""


class OversizeError(ProtocolError):
    """The frame is longer than the receiver's maximum body (FP-FRAME-5)."""


class CrcError(ProtocolError):
    """The CRC-16 at the end of the body does not match (FP-FRAME-7)."""


class BadVersionError(ProtocolError):
    """The body's version byte is not a version this codec speaks (FP-VER-2)."""


class UnknownTypeError(ProtocolError):
    """A message type code with no registered class, where one was required (FP-VER-3)."""


class BadLengthError(ProtocolError):
    """A body shorter than the header + CRC, or a payload of the wrong size for its type
    (FP-FRAME-6, FP-MSG-2)."""


class EncodeError(ProtocolError, ValueError):
    """A frame or message cannot be encoded as given."""


class FieldRangeError(EncodeError):
    """A field value does not fit its wire type or its documented range (FP-MSG-3)."""


class PayloadSizeError(EncodeError):
    """A payload larger than the protocol allows (FP-FRAME-5)."""
