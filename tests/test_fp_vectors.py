"""The committed vectors against the Python reference codec (SPEC.md section 8, FP-VEC-*)."""

from __future__ import annotations

from typing import Any

import pytest

from firmware_protocol import StreamDecoder, decode_frame, encode_frame
from firmware_protocol.stream import DecoderStats
from tests.test_fp_support import feed_all, frame_of, generator_module, item_shape, load, shape

VALID = load("valid.json")
INVALID = load("invalid.json")
MODES = ["whole", "halves", "bytewise"]
KINDS = ["bytes", "bytearray", "memoryview"]
GARBAGE_PREFIX = b"\x17\x42\x99\x00"  # one COBS-invalid run (code 0x17 overruns) + delimiter


def _ids(items: list[dict[str, Any]]) -> list[str]:
    return [item["name"] for item in items]


def test_vectors_cover_every_message_type() -> None:
    """FP-VEC-1: every message type of SPEC section 3 and an unknown type appear."""
    types = {item["type"] for item in VALID}
    assert types >= {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x10, 0x11, 0x7F}
    assert any(item["address"] == 0xFFFF for item in VALID)
    assert any(item["seq"] == 65535 for item in VALID)


@pytest.mark.parametrize("item", VALID, ids=_ids(VALID))
def test_encode_equals_vector_hex(item: dict[str, Any]) -> None:
    """FP-FRAME-1, FP-MSG-1: encoding the flat fields gives exactly the vector's bytes."""
    assert encode_frame(frame_of(item)).hex() == item["hex"]


@pytest.mark.parametrize("item", VALID, ids=_ids(VALID))
def test_decode_frame_equals_vector_fields(item: dict[str, Any]) -> None:
    """FP-FRAME-1: the one-frame decoder reads back the vector's header and fields."""
    assert shape(decode_frame(bytes.fromhex(item["hex"]))) == item_shape(item)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("item", VALID, ids=_ids(VALID))
def test_stream_decodes_valid_vector(item: dict[str, Any], mode: str, kind: str) -> None:
    """FP-RX-1: a vector fed whole, in halves or byte by byte, as any buffer type."""
    decoder = StreamDecoder()
    frames = feed_all(decoder, bytes.fromhex(item["hex"]), mode, kind)
    assert [shape(f) for f in frames] == [item_shape(item)]
    unknown = 0 if item["type"] in {1, 2, 3, 4, 5, 6, 0x10, 0x11} else 1
    assert decoder.stats == DecoderStats(frames=1, unknown_type=unknown)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("item", VALID, ids=_ids(VALID))
def test_stream_decodes_valid_vector_behind_garbage(item: dict[str, Any], mode: str) -> None:
    """FP-RX-2: garbage ended by a delimiter costs its own bytes, never the next frame."""
    decoder = StreamDecoder()
    frames = feed_all(decoder, GARBAGE_PREFIX + bytes.fromhex(item["hex"]), mode)
    assert [shape(f) for f in frames] == [item_shape(item)]
    assert decoder.stats.cobs_errors == 1
    assert decoder.stats.discarded_bytes == len(GARBAGE_PREFIX)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", INVALID, ids=_ids(INVALID))
def test_invalid_stream_frames_and_counters(case: dict[str, Any], mode: str, kind: str) -> None:
    """FP-RX-3..FP-RX-5: exact frames out and exact value of all 8 counters."""
    decoder = StreamDecoder()
    frames = feed_all(decoder, bytes.fromhex(case["hex"]), mode, kind)
    assert [shape(f) for f in frames] == [item_shape(f) for f in case["frames"]]
    assert decoder.stats.as_dict() == case["stats"]


def test_regenerating_vectors_yields_committed_files() -> None:
    """FP-VEC-3: generate.py reproduces valid.json and invalid.json byte for byte."""
    generate = generator_module()
    for filename, items in generate.build().items():
        committed = (generate.HERE / filename).read_text(encoding="utf-8")
        assert generate.render(items) == committed, f"{filename} is stale: run generate.py"


def test_spec_worked_examples_are_generated() -> None:
    """FP-VEC-3: the hex examples in SPEC.md section 9 are what the codec produces."""
    generate = generator_module()
    spec = generate.SPEC.read_text(encoding="utf-8")
    assert generate.spec_text(spec) == spec, "SPEC.md examples are stale: run generate.py"
    assert spec.count("wire   = ") == len(generate.EXAMPLES)
