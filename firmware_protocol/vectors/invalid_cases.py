"""Hand-specified streams for vectors/invalid.json (SPEC.md section 6 and 8).

Each case: a byte stream, the frames the decoder must return from it, and the exact value of
every counter. The expectations are written by hand from the SPEC rules; `invalid_items`
checks the Python decoder against them and raises if it disagrees.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from cobs import cobs

from firmware_protocol import (
    Event,
    Frame,
    Poll,
    StreamDecoder,
    Telemetry,
    Unknown,
    crc16,
    encode_body,
    encode_frame,
)
from firmware_protocol.stream import DecoderStats

Case = tuple[str, bytes, list[tuple[Frame, bytes]], dict[str, int]]

A = Frame(0x0012, 20, Event(1, 0xFF, 3600, 0), 0x01)
B = Frame(0x0012, 21, Telemetry(uptime_s=60, mains=2200), 0x02)
C = Frame(0x0034, 22, Poll(2))
BIG = Frame(0x0101, 0x0101, Unknown(0x7E, b"\xaa" * 240))  # 249-byte body


def wire(frame: Frame) -> bytes:
    return encode_frame(frame)


def body(frame: Frame) -> bytes:
    return encode_body(frame.address, frame.seq, frame.type, frame.flags, frame.message.pack())


def framed(raw_body: bytes) -> bytes:
    """COBS + delimiter around an arbitrary body (no checks)."""
    return cobs.encode(raw_body) + b"\x00"


def with_crc(head: bytes) -> bytes:
    return head + struct.pack("<H", crc16(head))


def patched(frame: Frame, offset: int, value: int) -> bytes:
    """Body of `frame` with byte `offset` replaced and the CRC recomputed."""
    raw = bytearray(body(frame)[:-2])
    raw[offset] = value
    return with_crc(bytes(raw))


def _ok(*frames: Frame) -> list[tuple[Frame, bytes]]:
    return [(f, wire(f)) for f in frames]


def cases() -> list[Case]:
    bad_crc = bytearray(body(A))
    bad_crc[-1] ^= 0x01
    flipped = bytearray(body(B))
    flipped[12] ^= 0x10
    tail_cut = wire(A)[:-2] + b"\x00"  # loses the CRC's last byte, inside a COBS block
    garbage1, garbage2 = b"\x13\x37\xff\xfe", b"\xde\xad"
    big_run = wire(BIG)[:-1]
    reserved_flags = with_crc(bytes([1, 0x12, 0, 30, 0, 0x10, 0x81, 2]))
    hello_12 = with_crc(bytes([1, 0x12, 0, 31, 0, 0x01, 0x02]) + bytes(range(1, 13)))
    head_fixed = body(B)[:28]  # header + the 21 bytes of fixed TELEMETRY fields
    tele_k2_one_record = with_crc(head_fixed + b"\x02" + b"\x01\x00\x05\xec")
    tele_k17 = with_crc(head_fixed + b"\x11" + b"\x01" * 68)
    poll_empty = with_crc(bytes([1, 0x34, 0, 32, 0, 0x10, 0]))
    return [
        ("bad_crc", framed(bytes(bad_crc)), [], {"crc_errors": 1, "discarded_bytes": 20}),
        ("bit_flip_then_valid", framed(bytes(flipped)) + wire(A), _ok(A),
         {"frames": 1, "crc_errors": 1, "discarded_bytes": len(wire(B))}),
        ("truncated_inside_cobs_block", tail_cut + wire(C), _ok(C),
         {"frames": 1, "cobs_errors": 1, "discarded_bytes": len(tail_cut)}),
        ("truncated_cobs_valid_fails_crc", framed(body(B)[:-3]) + wire(C), _ok(C),
         {"frames": 1, "crc_errors": 1, "discarded_bytes": len(framed(body(B)[:-3]))}),
        ("truncated_to_header", framed(body(A)[:5]) + wire(A), _ok(A),
         {"frames": 1, "bad_length": 1, "discarded_bytes": 7}),
        ("short_body_8_bytes", framed(body(C)[:8]), [], {"bad_length": 1, "discarded_bytes": 10}),
        ("oversize_run_then_valid", b"\x55" * 300 + b"\x00" + wire(A), _ok(A),
         {"frames": 1, "oversize": 1, "discarded_bytes": 301}),
        ("oversize_run_259_bytes", b"\x01" * 259 + b"\x00", [],
         {"oversize": 1, "discarded_bytes": 260}),
        ("run_258_decodes_to_257_bytes", b"\x01" * 258 + b"\x00" + wire(C), _ok(C),
         {"frames": 1, "oversize": 1, "discarded_bytes": 259}),
        ("lost_delimiter_merges_into_oversize", big_run + wire(A) + wire(C), _ok(C),
         {"frames": 1, "oversize": 1, "discarded_bytes": len(big_run) + len(wire(A))}),
        ("max_size_frame_at_limit_then_valid",
         wire(Frame(0x0101, 0x0101, Unknown(0x7E, b"\xaa" * 247), 1)) + wire(A),
         _ok(Frame(0x0101, 0x0101, Unknown(0x7E, b"\xaa" * 247), 1), A),
         {"frames": 2, "unknown_type": 1}),
        ("wrong_version_2", framed(patched(A, 0, 2)) + wire(A), _ok(A),
         {"frames": 1, "bad_version": 1, "discarded_bytes": 20}),
        ("wrong_version_0", framed(patched(C, 0, 0)), [],
         {"bad_version": 1, "discarded_bytes": 12}),
        ("unknown_type_returned", wire(Frame(0x0012, 23, Unknown(0x7F, b"\x01\x02\x03"), 1)),
         _ok(Frame(0x0012, 23, Unknown(0x7F, b"\x01\x02\x03"), 1)),
         {"frames": 1, "unknown_type": 1}),
        ("hello_payload_12_bytes", framed(hello_12), [], {"bad_length": 1, "discarded_bytes": 23}),
        ("telemetry_k_says_2_has_1", framed(tele_k2_one_record), [],
         {"bad_length": 1, "discarded_bytes": len(framed(tele_k2_one_record))}),
        ("telemetry_k_17", framed(tele_k17), [],
         {"bad_length": 1, "discarded_bytes": len(framed(tele_k17))}),
        ("poll_empty_payload", framed(poll_empty), [], {"bad_length": 1, "discarded_bytes": 11}),
        ("cobs_code_overruns_run", b"\x05\x11\x22\x00" + wire(C), _ok(C),
         {"frames": 1, "cobs_errors": 1, "discarded_bytes": 4}),
        ("garbage_before_and_between",
         garbage1 + b"\x00" + wire(A) + garbage2 + b"\x00" + wire(B), _ok(A, B),
         {"frames": 2, "cobs_errors": 2, "discarded_bytes": 8}),
        ("garbage_glued_to_frame_loses_it", b"\x02\x41" + wire(A) + wire(B), _ok(B),
         {"frames": 1, "crc_errors": 1, "discarded_bytes": 2 + len(wire(A))}),
        ("noise_burst_of_zeros", bytes(64) + wire(A) + bytes(16) + wire(B) + bytes(3), _ok(A, B),
         {"frames": 2}),
        ("only_zeros", bytes(32), [], {}),
        ("empty_stream", b"", [], {}),
        ("incomplete_tail_not_counted", wire(A) + wire(B)[:-1], _ok(A), {"frames": 1}),
        ("reserved_flag_bits_kept", framed(reserved_flags),
         [(Frame(0x0012, 30, Poll(2), 0x81), framed(reserved_flags))], {"frames": 1}),
    ]  # fmt: skip


def invalid_items(frame_item: Callable[..., dict[str, Any]]) -> list[dict[str, Any]]:
    items = []
    for name, stream, expected, counters in cases():
        decoder = StreamDecoder()
        got = decoder.feed(stream)
        want_stats = {**DecoderStats().as_dict(), **counters}
        want_frames = [f for f, _ in expected]
        if got != want_frames or decoder.stats.as_dict() != want_stats:
            raise AssertionError(f"{name}: decoder gave {got} {decoder.stats}, spec says "
                                 f"{want_frames} {want_stats}")  # fmt: skip
        items.append({
            "name": name,
            "hex": stream.hex(),
            "frames": [frame_item(f, w) for f, w in expected],
            "stats": want_stats,
        })  # fmt: skip
    return items
