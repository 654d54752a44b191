"""Helpers for the firmware_protocol tests (no tests here): load vectors, feed in pieces."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

from firmware_protocol import Frame, StreamDecoder, message_fields, message_from_fields

VECTORS = Path(__file__).resolve().parents[1] / "firmware_protocol" / "vectors"


def load(name: str) -> list[dict[str, Any]]:
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))


def generator_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fp_vectors_generate", VECTORS / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def frame_of(item: dict[str, Any]) -> Frame:
    """The Frame a vector item describes (built from its flat fields, not its hex)."""
    message = message_from_fields(item["type"], item["fields"])
    return Frame(item["address"], item["seq"], message, item["flags"])


def shape(frame: Frame) -> dict[str, Any]:
    """A decoded frame in the vectors' comparable shape."""
    return {
        "address": frame.address,
        "seq": frame.seq,
        "flags": frame.flags,
        "type": frame.type,
        "fields": message_fields(frame.message),
    }


def item_shape(item: dict[str, Any]) -> dict[str, Any]:
    return {key: item[key] for key in ("address", "seq", "flags", "type", "fields")}


def pieces(data: bytes, mode: str) -> Iterator[bytes]:
    """`data` cut as a serial driver might deliver it."""
    if mode == "whole":
        yield data
    elif mode == "halves":
        yield data[: len(data) // 2]
        yield data[len(data) // 2 :]
    elif mode == "bytewise":
        for i in range(len(data)):
            yield data[i : i + 1]
    else:
        raise ValueError(mode)


def as_buffer(piece: bytes, kind: str) -> bytes | bytearray | memoryview:
    return {"bytes": piece, "bytearray": bytearray(piece), "memoryview": memoryview(piece)}[kind]


def feed_all(decoder: StreamDecoder, data: bytes, mode: str, kind: str = "bytes") -> list[Frame]:
    frames: list[Frame] = []
    for piece in pieces(data, mode):
        frames.extend(decoder.feed(as_buffer(piece, kind)))
    return frames
