"""StreamDecoder rules of SPEC.md section 6 (FP-RX-*), beyond the committed vectors."""

from __future__ import annotations

import pytest
from cobs import cobs

from firmware_protocol import (
    BadLengthError,
    BadVersionError,
    Event,
    Frame,
    Poll,
    ProtocolError,
    StreamDecoder,
    Telemetry,
    Unknown,
    crc16,
    encode_frame,
)
from firmware_protocol.stream import DecoderStats
from tests.test_fp_support import load

A = Frame(0x0012, 1, Event(1, 0xFF, 10, 0), 0x01)
B = Frame(0x0012, 2, Telemetry(uptime_s=5), 0x02)


def _with_crc(head: bytes) -> bytes:
    return head + crc16(head).to_bytes(2, "little")


def test_split_at_every_offset_gives_same_result() -> None:
    """FP-RX-1: chunk boundaries never change the frames or the counters."""
    stream = b"\x13\x37\x00" + encode_frame(A) + b"\x00\x00" + encode_frame(B) + b"\x05\x01"
    reference = StreamDecoder()
    expected = reference.feed(stream)
    assert expected == [A, B]
    for cut in range(len(stream) + 1):
        decoder = StreamDecoder()
        frames = decoder.feed(stream[:cut]) + decoder.feed(stream[cut:])
        assert frames == expected and decoder.stats == reference.stats, f"cut at {cut}"


def test_memory_bounded_on_endless_run() -> None:
    """FP-RX-6: 100 kB without a delimiter: at most 258 bytes held, one oversize at the 0x00."""
    decoder = StreamDecoder()
    for _ in range(100):
        assert decoder.feed(b"\x55" * 1000) == []
        assert decoder.buffered <= 258
    assert decoder.pending == 100_000
    assert decoder.feed(b"\x00" + encode_frame(A)) == [A]
    assert decoder.stats == DecoderStats(frames=1, oversize=1, discarded_bytes=100_001)
    assert decoder.pending == 0 and decoder.buffered == 0


def test_reject_callback_carries_header_for_nack() -> None:
    """FP-VER-2, FP-MSG-2: a CRC-valid frame that is dropped exposes its header (to NACK)."""
    rejected: list[ProtocolError] = []
    decoder = StreamDecoder(on_reject=rejected.append)
    wrong_version = _with_crc(bytes([2, 0x12, 0, 0x34, 0x12, 0x03, 0x01]) + bytes(9))
    short_poll = _with_crc(bytes([1, 0x12, 0, 0x35, 0x12, 0x10, 0x00]))
    stream = b"".join(cobs.encode(b) + b"\x00" for b in (wrong_version, short_poll))
    assert decoder.feed(stream + b"\x02\x07\x00") == []  # last: a 1-byte body
    assert [type(err) for err in rejected] == [BadVersionError, BadLengthError, BadLengthError]
    assert (rejected[0].header.seq, rejected[0].header.type) == (0x1234, 0x03)
    assert (rejected[1].header.seq, rejected[1].header.type) == (0x1235, 0x10)
    assert rejected[2].header is None  # too short to have a trustworthy header


def test_unknown_type_returned_and_counted() -> None:
    """FP-VER-3: an unknown type is a frame (to NACK reason 2), counted in unknown_type."""
    decoder = StreamDecoder()
    frame = Frame(0x0012, 9, Unknown(0x42, b"\xff\x00"), 0x01)
    assert decoder.feed(encode_frame(frame)) == [frame]
    assert decoder.stats == DecoderStats(frames=1, unknown_type=1)


def test_smaller_max_body() -> None:
    """FP-FRAME-5: a receiver with a smaller buffer counts longer frames as oversize."""
    decoder = StreamDecoder(max_body=16)
    assert decoder.feed(encode_frame(B) + encode_frame(Frame(1, 1, Poll(2)))) == [
        Frame(1, 1, Poll(2))
    ]
    assert decoder.stats.oversize == 1 and decoder.stats.frames == 1
    for bad in (8, 257):
        with pytest.raises(ValueError, match="max_body"):
            StreamDecoder(max_body=bad)


def test_tail_without_delimiter_waits() -> None:
    """FP-RX-1: bytes after the last 0x00 are neither decoded nor counted until it comes."""
    decoder = StreamDecoder()
    wire = encode_frame(A)
    assert decoder.feed(wire[:-1]) == []
    assert decoder.stats == DecoderStats() and decoder.pending == len(wire) - 1
    assert decoder.feed(b"\x00") == [A]


def test_every_single_bit_flip_of_every_vector_is_rejected() -> None:
    """FP-FRAME-7, FP-RX-2: no single-bit error in any valid vector's wire bytes yields a frame,
    and the frame after the next 0x00 is always decoded."""
    after = Frame(1, 1, Poll(2))
    tail = b"\x00" + encode_frame(after)
    for item in load("valid.json"):
        wire = bytes.fromhex(item["hex"])
        for bit in range((len(wire) - 1) * 8):
            damaged = bytearray(wire)
            damaged[bit // 8] ^= 1 << (bit % 8)
            decoder = StreamDecoder()
            assert decoder.feed(bytes(damaged) + tail) == [after], (item["name"], bit)
