"""Frame layer: header, CRC-16/CCITT-FALSE, COBS and the 0x00 delimiter (SPEC.md section 1).

    wire  = COBS(body) 0x00
    body  = version:u8 | address:u16le | seq:u16le | type:u8 | flags:u8 | payload:n | crc:u16le
            0            1               3           5         6          7           7+n
    crc   = CRC-16/CCITT-FALSE over body[0 : 7+n]

`decode_body` checks, in this order (FP-RX-3): size > max_body -> OversizeError, size < 9 ->
BadLengthError, CRC -> CrcError, version -> BadVersionError, payload size for a known type ->
BadLengthError. An unknown type is not an error here: it decodes to `Unknown`.
"""

from __future__ import annotations

import binascii
import struct
from dataclasses import dataclass
from typing import NamedTuple

from cobs import cobs

from firmware_protocol.enums import (
    ADDRESS_BROADCAST,
    FLAG_ACK_REQUESTED,
    FLAG_RESPONSE,
    FLAGS_DEFINED,
    PROTOCOL_VERSION,
)
from firmware_protocol.errors import (
    BadLengthError,
    BadVersionError,
    CobsError,
    CrcError,
    FieldRangeError,
    OversizeError,
    PayloadSizeError,
)
from firmware_protocol.messages import MAX_PAYLOAD, Message, decode_message, message_type
from firmware_protocol.wire import check_range

MAX_BODY = 256
MIN_BODY = 9  # header 7 + crc 2
HEADER = struct.Struct("<BHHBB")


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, no reflection, xorout 0 (FP-FRAME-7).
    `binascii.crc_hqx` is exactly this CRC given init 0xFFFF; check value 0x29B1."""
    return binascii.crc_hqx(data, 0xFFFF)


def max_encoded(max_body: int) -> int:
    """Longest COBS encoding of a body of `max_body` bytes (258 for 256)."""
    return max_body + (max_body + 253) // 254


class Header(NamedTuple):
    version: int
    address: int
    seq: int
    type: int
    flags: int


@dataclass(frozen=True, slots=True)
class Frame:
    """One protocol frame: `address` is the controller's (source from a controller,
    destination from the master, 0xFFFF broadcast), `seq` the sender's counter."""

    address: int
    seq: int
    message: Message
    flags: int = 0

    @property
    def type(self) -> int:
        return message_type(self.message)

    @property
    def ack_requested(self) -> bool:
        return bool(self.flags & FLAG_ACK_REQUESTED)

    @property
    def is_response(self) -> bool:
        return bool(self.flags & FLAG_RESPONSE)

    @property
    def is_broadcast(self) -> bool:
        return self.address == ADDRESS_BROADCAST


def encode_body(address: int, seq: int, type_code: int, flags: int, payload: bytes) -> bytes:
    """Header + payload + CRC, before COBS. Range-checks the header fields."""
    check_range("Frame", "address", "H", address)
    check_range("Frame", "seq", "H", seq)
    check_range("Frame", "type", "B", type_code)
    check_range("Frame", "flags", "B", flags)
    if len(payload) > MAX_PAYLOAD:
        raise PayloadSizeError(f"payload is {len(payload)} bytes, at most {MAX_PAYLOAD}")
    head = HEADER.pack(PROTOCOL_VERSION, address, seq, type_code, flags) + payload
    return head + struct.pack("<H", crc16(head))


def encode_frame(frame: Frame) -> bytes:
    """Frame -> wire bytes: COBS(body) + 0x00 (FP-FRAME-1). Raises an EncodeError subclass."""
    if not isinstance(frame.flags, int) or frame.flags & ~FLAGS_DEFINED:
        raise FieldRangeError(f"Frame.flags={frame.flags!r} sets reserved bits (FP-FRAME-3)")
    payload = frame.message.pack()
    body = encode_body(frame.address, frame.seq, message_type(frame.message), frame.flags, payload)
    return cobs.encode(body) + b"\x00"


def decode_body(body: bytes, max_body: int = MAX_BODY) -> Frame:
    """A COBS-decoded body -> Frame, or the specific ProtocolError (order in module doc)."""
    if len(body) > max_body:
        raise OversizeError(f"body is {len(body)} bytes, maximum {max_body}")
    if len(body) < MIN_BODY:
        raise BadLengthError(f"body is {len(body)} bytes, minimum {MIN_BODY}")
    (expected,) = struct.unpack_from("<H", body, len(body) - 2)
    actual = crc16(body[:-2])
    if actual != expected:
        raise CrcError(f"crc {expected:#06x} on the wire, {actual:#06x} computed")
    header = Header(*HEADER.unpack_from(body))
    if header.version != PROTOCOL_VERSION:
        raise BadVersionError(f"protocol version {header.version}", header=header)
    try:
        message = decode_message(header.type, body[HEADER.size : -2])
    except BadLengthError as err:
        raise BadLengthError(str(err), header=header) from err
    return Frame(header.address, header.seq, message, header.flags)


def cobs_decode(run: bytes) -> bytes:
    """Decode one run of non-zero bytes (FP-FRAME-4); CobsError if a code overruns it."""
    try:
        return cobs.decode(run)
    except cobs.DecodeError as err:
        raise CobsError(f"invalid COBS: {err}") from err


def decode_frame(wire: bytes, max_body: int = MAX_BODY) -> Frame:
    """One complete wire frame (with or without its trailing 0x00) -> Frame."""
    run = bytes(wire[:-1] if wire[-1:] == b"\x00" else wire)
    if len(run) > max_encoded(max_body):
        raise OversizeError(f"encoded frame is {len(run)} bytes, maximum {max_encoded(max_body)}")
    return decode_body(cobs_decode(run), max_body)
