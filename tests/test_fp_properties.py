"""Property tests (hypothesis): round trips for every message type, and a decoder that never
raises and never loses a valid frame that follows a delimiter (FP-FRAME-1, FP-RX-1..7)."""

from __future__ import annotations

import dataclasses
import itertools

from cobs import cobs
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_protocol import (
    REGISTRY,
    ClusterRecord,
    Frame,
    ProtocolError,
    StreamDecoder,
    Telemetry,
    Unknown,
    decode_frame,
    encode_frame,
    message_fields,
    message_from_fields,
)
from firmware_protocol.wire import RANGES, FixedMessage


def _fixed(cls: type[FixedMessage]) -> st.SearchStrategy:
    return st.builds(cls, *(st.integers(*RANGES[code]) for code in cls.CODES))


def _telemetry() -> st.SearchStrategy:
    ints = [st.integers(*RANGES[code]) for code in Telemetry.CODES]
    clusters = st.lists(_fixed(ClusterRecord), max_size=16).map(tuple)
    return st.builds(lambda *v: Telemetry(*v[:-1], clusters=v[-1]), *ints, clusters)


UNKNOWN = st.builds(
    Unknown,
    st.integers(0, 255).filter(lambda t: t not in REGISTRY),
    st.binary(max_size=247),
)
MESSAGES = st.one_of(
    _telemetry(),
    UNKNOWN,
    *(_fixed(cls) for cls in REGISTRY.values() if cls is not Telemetry),
)
FRAMES = st.builds(
    Frame, st.integers(0, 0xFFFF), st.integers(0, 0xFFFF), MESSAGES, st.integers(0, 3)
)


@given(FRAMES)
def test_round_trip_every_message_type(frame: Frame) -> None:
    """FP-FRAME-1, FP-FRAME-5, FP-MSG-1: encode -> decode is the identity; sizes bounded."""
    wire = encode_frame(frame)
    assert wire[-1] == 0 and 0 not in wire[:-1] and len(wire) <= 259
    assert decode_frame(wire) == frame
    assert StreamDecoder().feed(wire) == [frame]


@given(MESSAGES)
def test_flat_fields_round_trip(message: object) -> None:
    """FP-VEC-2: message_from_fields inverts message_fields for every type."""
    frame_type = Frame(1, 0, message).type  # type: ignore[arg-type]
    fields = message_fields(message)  # type: ignore[arg-type]
    assert message_from_fields(frame_type, fields) == message
    if not isinstance(message, Unknown | Telemetry):
        assert len(fields) == len(dataclasses.fields(message))  # type: ignore[arg-type]


def _damaged(frame: Frame, data: st.DataObject) -> bytes:
    """A valid frame damaged the way a line damages it: truncated, bit-flipped or glued."""
    wire = encode_frame(frame)
    how = data.draw(st.sampled_from(["truncate", "flip", "noise"]))
    if how == "truncate":
        return wire[: data.draw(st.integers(0, len(wire) - 1))] + b"\x00"
    if how == "flip":
        flipped = bytearray(wire)
        pos = data.draw(st.integers(0, len(wire) - 2))
        flipped[pos] ^= 1 << data.draw(st.integers(0, 7))
        return bytes(flipped)
    return data.draw(st.binary(max_size=300))


def _chunks(stream: bytes, data: st.DataObject) -> list[bytes]:
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=12)))
    edges = [0, *cuts, len(stream)]
    return [stream[a:b] for a, b in itertools.pairwise(edges)]


@settings(max_examples=200)
@given(st.lists(st.tuples(FRAMES, st.booleans()), min_size=1, max_size=8), st.data())
def test_valid_frames_survive_interleaved_damage(
    plan: list[tuple[Frame, bool]], data: st.DataObject
) -> None:
    """FP-RX-2, FP-RX-7: every valid frame sent after a 0x00 is decoded, in order, whatever
    damaged frames or noise came before; the decoder never raises; memory stays bounded."""
    stream, expected = b"", []
    for frame, damage_before in plan:
        if damage_before:
            stream += _damaged(frame, data)
        stream += b"\x00" + encode_frame(frame)
        expected.append(frame)
    decoder = StreamDecoder()
    got = []
    for chunk in _chunks(stream, data):
        got.extend(decoder.feed(memoryview(chunk)))
        assert decoder.buffered <= 258
    remaining = iter(got)
    assert all(any(g == want for g in remaining) for want in expected), (expected, got)
    assert decoder.stats.frames == len(got)


@settings(max_examples=300)
@given(st.binary(max_size=1500), st.data())
def test_random_bytes_match_one_shot_decoder_and_conserve_bytes(
    stream: bytes, data: st.DataObject
) -> None:
    """FP-RX-3, FP-RX-4: on any input the stream decoder agrees run by run with decode_frame,
    and consumed bytes = discarded_bytes + bytes of accepted runs + idle zeros."""
    decoder = StreamDecoder()
    got = [f for chunk in _chunks(stream, data) for f in decoder.feed(chunk)]
    runs = stream.split(b"\x00")[:-1]  # the last piece has no delimiter yet
    expected, discarded = [], 0
    for run in runs:
        if not run:
            continue
        try:
            expected.append(decode_frame(run))
        except ProtocolError:
            discarded += len(run) + 1
    assert got == expected
    assert decoder.stats.discarded_bytes == discarded
    assert decoder.stats.frames == len(expected)


@given(FRAMES, st.data())
def test_each_meaningless_cobs_run_costs_one_counter(frame: Frame, data: st.DataObject) -> None:
    """FP-RX-2, FP-RX-3: each COBS-valid but meaningless run costs exactly one counter."""
    bodies = data.draw(st.lists(st.binary(min_size=1, max_size=40), max_size=5))
    stream = b"".join(cobs.encode(b) + b"\x00" for b in bodies) + encode_frame(frame)
    decoder = StreamDecoder()
    frames = decoder.feed(stream)
    stats = decoder.stats
    errors = stats.crc_errors + stats.bad_length + stats.bad_version + stats.oversize
    assert frames[-1] == frame
    assert errors + stats.cobs_errors + len(frames) - 1 == len(bodies)
