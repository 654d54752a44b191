"""Write vectors/valid.json and vectors/invalid.json from the Python reference codec.

    .venv/bin/python firmware_protocol/vectors/generate.py          # rewrite the files
    .venv/bin/python firmware_protocol/vectors/generate.py --check  # exit 1 if they differ

Format (SPEC.md section 8, FP-VEC-*): see `frame_item` and `invalid_cases.py`. Every
invalid case states its expected frames and counters by hand; this script refuses to write
the files if the decoder disagrees, so the vectors are a check on the codec, not a copy of it.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # repo root, so the script runs without install
sys.path.insert(0, str(HERE))

from cobs import cobs  # noqa: E402

from firmware_protocol import (  # noqa: E402
    FLAG_ACK_REQUESTED,
    FLAG_RESPONSE,
    REGISTRY,
    UNKNOWN_I8,
    UNKNOWN_U16,
    Ack,
    Capability,
    ClusterRecord,
    Event,
    Frame,
    Hello,
    Nack,
    Playback,
    Poll,
    Telemetry,
    TimeSync,
    Unknown,
    encode_frame,
    message_fields,
)

R, A = FLAG_RESPONSE, FLAG_ACK_REQUESTED
ALL_CAPS = int(Capability.WIRED | Capability.BATTERY | Capability.TEMP | Capability.AUDIO_LEVEL)


def _cluster(i: int) -> ClusterRecord:
    return ClusterRecord(id=i, kind=i % 3, flags=(i * 5) % 8, rms=-3 * i - 1)


def valid_frames() -> list[tuple[str, Frame]]:
    """(name, frame) for every message type and the edge values of each field."""
    tele = Telemetry(
        uptime_s=86_400, amp_state=1, audio_rms=-1850, audio_peak=-301, mains=2205,
        battery=13_150, power_flags=0x02, temperature=3675, fm_forward=UNKNOWN_U16,
        fm_reflected=UNKNOWN_U16, clusters=tuple(_cluster(i) for i in range(4)),
    )  # fmt: skip
    return [
        ("hello_typical", Frame(0x0012, 1, Hello(0x4C4F4158, 1, 4, 2, 3, ALL_CAPS, 4, 1), R)),
        ("hello_all_zero", Frame(0x0001, 0, Hello(0, 0, 0, 0, 0, 0, 0, 0))),
        (
            "hello_max_values",
            Frame(0xFFFE, 65535, Hello(0xFFFFFFFF, 255, 255, 255, 255, 0xFFFF, 16, 0xFFFF), R),
        ),
        ("telemetry_typical_4_clusters", Frame(0x0012, 2, tele, R)),
        ("telemetry_all_unknown_0_clusters", Frame(0x0003, 0x1234, Telemetry(), R)),
        (
            "telemetry_16_clusters",
            Frame(
                0x0100,
                65535,
                Telemetry(
                    uptime_s=0xFFFFFFFF,
                    amp_state=3,
                    audio_rms=-20000,
                    audio_peak=0,
                    mains=0,
                    battery=0,
                    power_flags=0x07,
                    temperature=-4000,
                    fm_forward=500,
                    fm_reflected=12,
                    clusters=tuple(_cluster(i) for i in range(16)),
                ),
                R,
            ),
        ),
        (
            "telemetry_extremes",
            Frame(
                0x7FFF,
                9,
                Telemetry(
                    uptime_s=1,
                    amp_state=2,
                    audio_rms=0x7FFF,
                    audio_peak=-0x7FFF,
                    mains=0xFFFE,
                    battery=0xFFFE,
                    power_flags=0xFF,
                    temperature=0x7FFF,
                    fm_forward=0,
                    fm_reflected=0,
                    reserved=0,
                    clusters=(
                        ClusterRecord(255, 255, 255, 127),
                        ClusterRecord(0, 0, 0, UNKNOWN_I8),
                        ClusterRecord(1, 1, 0, -127),
                    ),
                ),
            ),
        ),
        ("event_power_lost_ack_requested", Frame(0x0012, 3, Event(1, 0xFF, 3600, 0), A)),
        ("event_battery_low", Frame(0x0012, 4, Event(8, 0xFF, 7200, 1150), A)),
        ("event_over_temperature_cluster", Frame(0x0012, 5, Event(9, 2, 99, 8050), A)),
        ("event_reboot_negative_value", Frame(0x0012, 6, Event(5, 0xFF, 0, -1), A)),
        ("event_unknown_code_kept_raw", Frame(0x0012, 7, Event(200, 0, 0xFFFFFFFF, -32768))),
        ("playback_start_emergency", Frame(0x0012, 8, Playback(1, 2, 2, 0x000F, 4000), A)),
        ("playback_stop", Frame(0x0012, 9, Playback(0, 1, 0, 0, 4100), A)),
        ("playback_all_clusters_max", Frame(0xFFFE, 10, Playback(1, 4, 1, 0xFFFF, 0xFFFFFFFF))),
        ("ack_from_master", Frame(0x0012, 100, Ack(3, 0x03))),
        ("ack_from_controller_seq_max", Frame(0x0012, 11, Ack(65535, 0x11), R)),
        ("nack_bad_length", Frame(0x0012, 12, Nack(101, 0x11, 3), R)),
        ("nack_unsupported_version", Frame(0x0005, 13, Nack(0, 0x01, 4), R)),
        ("nack_unknown_type", Frame(0x0012, 0, Nack(65535, 0x7F, 2))),
        ("poll_telemetry", Frame(0x0012, 101, Poll(2))),
        ("poll_hello", Frame(0x0001, 0, Poll(1))),
        ("time_sync_broadcast", Frame(0xFFFF, 102, TimeSync(1_795_000_000_000, 420))),
        ("time_sync_extremes", Frame(0x0012, 65535, TimeSync(0xFFFFFFFFFFFFFFFF, -32768), A)),
        ("time_sync_zero", Frame(0x0012, 0, TimeSync(0, 0))),
        ("unknown_type_empty_payload", Frame(0x0012, 14, Unknown(0x7F))),
        ("unknown_type_with_payload", Frame(0x0012, 15, Unknown(0x20, bytes(range(0, 16))), A)),
        # 7 + 245 + 2 = 254 non-zero bytes: one full COBS block, no trailing code byte
        ("cobs_exact_254_block", Frame(0x0101, 0x0101, Unknown(0x7E, b"\xaa" * 245), A)),
        # 256-byte body, 258 bytes encoded: the largest legal frame (FP-FRAME-5)
        ("max_size_frame", Frame(0x0101, 0x0101, Unknown(0x7E, b"\xaa" * 247), A)),
        ("max_size_frame_all_zero_payload", Frame(0x0101, 0x0202, Unknown(0x7D, bytes(247)))),
    ]


def decoded(message: Any) -> dict[str, Any]:
    """Human-readable, nested form of a message."""
    if isinstance(message, Unknown):
        return {"type": message.type, "payload": message.payload.hex()}
    return {"message": type(message).__name__, **dataclasses.asdict(message)}


def frame_item(frame: Frame, wire: bytes | None = None) -> dict[str, Any]:
    """One frame in vector form; `wire` overrides the encoding (frames encode_frame refuses)."""
    return {
        "hex": (wire if wire is not None else encode_frame(frame)).hex(),
        "address": frame.address,
        "seq": frame.seq,
        "flags": frame.flags,
        "type": frame.type,
        "fields": message_fields(frame.message),
        "decoded": decoded(frame.message),
    }


def build() -> dict[str, list[dict[str, Any]]]:
    from invalid_cases import invalid_items  # beside this file

    valid = [{"name": name, **frame_item(frame)} for name, frame in valid_frames()]
    return {"valid.json": valid, "invalid.json": invalid_items(frame_item)}


def render(items: list[dict[str, Any]]) -> str:
    return json.dumps(items, indent=1, ensure_ascii=False) + "\n"


SPEC = HERE.parent / "SPEC.md"
EXAMPLES = ["hello_typical", "telemetry_typical_4_clusters", "event_power_lost_ack_requested",
            "playback_start_emergency", "ack_from_master", "nack_unsupported_version",
            "poll_telemetry", "time_sync_broadcast", "unknown_type_with_payload"]  # fmt: skip
BEGIN, END = "<!-- examples:begin -->", "<!-- examples:end -->"


def _field_lines(key: str, value: Any) -> str:
    if key != "clusters":
        return f"{key} = {value}"
    records = [" ".join(f"{k}={v}" for k, v in c.items()) for c in value]
    lines = [f"clusters[{i}]: {record}" for i, record in enumerate(records)]
    return "\n".join([f"k = {len(records)}", *lines])


def _example(name: str, frame: Frame) -> str:
    body = cobs.decode(encode_frame(frame)[:-1])
    fields = dataclasses.asdict(frame.message) if not isinstance(frame.message, Unknown) else {
        "payload": frame.message.payload.hex(" ")}  # fmt: skip
    kind = type(frame.message).__name__.upper() if frame.type in REGISTRY else "unknown type"
    return "\n".join([
        f"**{kind} (0x{frame.type:02x})**, vector `{name}`: address 0x{frame.address:04x}, "
        f"seq {frame.seq}, flags 0x{frame.flags:02x}",
        "",
        "```",
        *(_field_lines(key, value) for key, value in fields.items()),
        f"body   = {body[:7].hex(' ')} | {body[7:-2].hex(' ')} | {body[-2:].hex(' ')}",
        f"wire   = {encode_frame(frame).hex(' ')}",
        "```",
    ])  # fmt: skip


def spec_text(current: str) -> str:
    """SPEC.md with its worked-examples section regenerated."""
    frames = dict(valid_frames())
    section = "\n\n".join(_example(name, frames[name]) for name in EXAMPLES)
    head, rest = current.split(BEGIN, 1)
    return f"{head}{BEGIN}\n{section}\n{END}{rest.split(END, 1)[1]}"


def main(argv: list[str]) -> int:
    stale = []
    for filename, items in build().items():
        path = HERE / filename
        text = render(items)
        if "--check" in argv:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(filename)
        else:
            path.write_text(text, encoding="utf-8")
    spec = SPEC.read_text(encoding="utf-8")
    if "--check" not in argv:
        SPEC.write_text(spec_text(spec), encoding="utf-8")
    elif spec_text(spec) != spec:
        stale.append("SPEC.md examples")
    if stale:
        print("stale vectors:", ", ".join(stale), file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
