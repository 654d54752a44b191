"""The reference C codec (firmware_protocol/c/) against the shared vectors and the Python codec.

The C harness `vectors_cli` is built with gcc (the flags of firmware_protocol/c/Makefile) and
driven over a pipe; see the command list at the top of vectors_cli.c. Spec ids checked:
FP-FRAME-* (framing, CRC, COBS, sizes), FP-MSG-* (payload layouts), FP-RX-* (stream decoder
counters and resynchronisation), FP-VEC-* (the vectors).
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import firmware_protocol as fp

ROOT = Path(__file__).resolve().parent.parent
C_DIR = ROOT / "firmware_protocol" / "c"
VECTORS = ROOT / "firmware_protocol" / "vectors"
STAT_NAMES = (
    "frames",
    "discarded_bytes",
    "crc_errors",
    "oversize",
    "bad_version",
    "unknown_type",
    "bad_length",
    "cobs_errors",
)

MAX_LINE_BYTES = 1 << 17  # vectors_cli.c MAX_LINE in bytes of hex

pytestmark = pytest.mark.skipif(
    shutil.which("gcc") is None or shutil.which("make") is None,
    reason="gcc/make not installed (`make test` installs them); the C codec cannot be built",
)


class Harness:
    """One running vectors_cli process; each command gets its answer lines."""

    def __init__(self, binary: Path) -> None:
        self.proc = subprocess.Popen(
            [str(binary)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )

    def _line(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"harness exited (rc={self.proc.poll()})")
        return line.rstrip("\n")

    def _send(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def encode(self, type_code: int, address: int, seq: int, flags: int, fields: list[int]) -> str:
        """Wire hex, or "ERR ..." when the C side refuses the frame."""
        self._send(" ".join(str(v) for v in ("E", type_code, address, seq, flags, *fields)))
        return self._line()

    def encode_into(self, cap: int, *frame: int | list[int]) -> str:
        """As encode, into an output buffer of exactly `cap` bytes."""
        *head, fields = frame
        self._send(" ".join(str(v) for v in ("L", cap, *head, *fields)))  # type: ignore[misc]
        return self._line()

    def decode(self, data: bytes, persistent: bool = False) -> tuple[list[list[int]], dict]:
        """Feed `data` to a fresh decoder (or the persistent one): (frames, stats)."""
        self._send(("P " if persistent else "D ") + data.hex())
        frames = []
        while (line := self._line()).startswith("F "):
            frames.append([int(v) for v in line.split()[1:]])
        assert line.startswith("S "), line
        return frames, dict(zip(STAT_NAMES, map(int, line.split()[1:]), strict=True))

    def rejects(self, data: bytes) -> tuple[list[list[int]], dict]:
        """Byte by byte into a fresh decoder: ([error code, header...] per dropped run, stats)."""
        self._send("N " + data.hex())
        rejects = []
        while not (line := self._line()).startswith("S "):
            if line.startswith("X "):
                rejects.append([int(v) for v in line.split()[1:]])
        return rejects, dict(zip(STAT_NAMES, map(int, line.split()[1:]), strict=True))

    def reset(self) -> None:
        self._send("R")
        assert self._line() == "OK"

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=10)
        assert self.proc.stdout is not None
        self.proc.stdout.close()


def build(tmp: Path, target: str = "all") -> Path:
    result = subprocess.run(
        ["make", "-s", "-C", str(C_DIR), f"BUILD={tmp}", target],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return tmp / ("vectors_cli_asan" if target == "asan" else "vectors_cli")


@pytest.fixture(scope="module")
def harness(tmp_path_factory):
    h = Harness(build(tmp_path_factory.mktemp("fp_c")))
    yield h
    h.close()


def load(name: str) -> list[dict]:
    path = VECTORS / name
    if not path.exists():
        pytest.skip(f"{path} not generated yet (firmware_protocol/vectors/generate.py)")
    return json.loads(path.read_text())


def frame_fields(vector: dict) -> list[int]:
    """A vector frame in the harness's flat F-line form."""
    head = [vector["type"], vector["address"], vector["seq"], vector["flags"]]
    return head + list(vector["fields"])


def py_flat(frame: fp.Frame) -> list[int]:
    return [frame.type, frame.address, frame.seq, frame.flags, *fp.message_fields(frame.message)]


# lfp_err_t of each Python decode error (loaxa_fp.h); BadLengthError with a header is a
# payload of the wrong size (LFP_ERR_PAYLOAD), without one a body under 9 bytes.
C_ERROR = {
    fp.CobsError: -4,
    fp.CrcError: -6,
    fp.BadVersionError: -7,
    fp.OversizeError: -8,
}


def py_rejects(data: bytes) -> tuple[list[list[int]], dict]:
    rejects: list[list[int]] = []

    def on_reject(err: fp.ProtocolError) -> None:
        if isinstance(err, fp.BadLengthError):
            code = -9 if err.header is not None else -5
        else:
            code = C_ERROR[type(err)]
        head = [] if err.header is None else [err.header.type, *err.header[1:3], err.header.flags]
        rejects.append([code, *head])

    decoder = fp.StreamDecoder(on_reject=on_reject)
    decoder.feed(data)
    return rejects, decoder.stats.as_dict()


def py_decode(data: bytes) -> tuple[list[list[int]], dict]:
    decoder = fp.StreamDecoder()
    frames = [py_flat(f) for f in decoder.feed(data)]
    return frames, decoder.stats.as_dict()


# --- the shared vectors (FP-VEC-*) ---------------------------------------------------------


def test_valid_vectors_encode_to_the_exact_wire_bytes(harness):
    """FP-VEC-1, FP-FRAME-1..7, FP-MSG-1: C encodes every valid vector byte for byte."""
    vectors = load("valid.json")
    wrong = [
        (v["name"], got, v["hex"])
        for v in vectors
        if (got := harness.encode(*frame_fields(v)[:4], v["fields"])) != v["hex"]
    ]
    assert wrong == [], f"{len(wrong)}/{len(vectors)} vectors encode differently: {wrong[:3]}"


def test_valid_vectors_decode_to_the_exact_fields(harness):
    """FP-VEC-1, FP-RX-3, FP-VER-3: a fresh C decoder yields exactly the vector's frame."""
    vectors = load("valid.json")
    for v in vectors:
        frames, stats = harness.decode(bytes.fromhex(v["hex"]))
        assert frames == [frame_fields(v)], v["name"]
        known = v["type"] in fp.REGISTRY
        expected = dict.fromkeys(STAT_NAMES, 0) | {"frames": 1, "unknown_type": int(not known)}
        assert stats == expected, v["name"]


def test_invalid_vectors_give_the_same_frames_and_counters(harness):
    """FP-VEC-3, FP-RX-1..6: garbage, bad CRC, version, length, COBS, oversize runs."""
    for v in load("invalid.json"):
        frames, stats = harness.decode(bytes.fromhex(v["hex"]))
        assert frames == [frame_fields(f) for f in v["frames"]], v["name"]
        assert stats == v["stats"], v["name"]


def test_rejected_runs_report_the_same_error_and_header_for_a_nack(harness):
    """FP-RX-3, FP-VER-2, FP-MSG-2: the error of every dropped run, and the header of the
    ones with a good CRC (what a controller needs to NACK them), equal Python's on_reject."""
    vectors = load("invalid.json")
    for v in vectors:
        data = bytes.fromhex(v["hex"])
        assert harness.rejects(data) == py_rejects(data), v["name"]
    assert any(len(r) > 1 for v in vectors for r in harness.rejects(bytes.fromhex(v["hex"]))[0])


def test_valid_vectors_byte_by_byte_and_behind_garbage(harness):
    """FP-RX-1, FP-RX-2: frames split anywhere reassemble; garbage costs only its own run."""
    vectors = load("valid.json")
    stream = b"".join(bytes.fromhex(v["hex"]) for v in vectors)
    garbage = b"\x13\x37\xff\x01\x00\x02\xaa\xbb\xcc\x00"  # two bad runs
    harness.reset()
    frames: list[list[int]] = []
    for i in range(len(garbage + stream)):
        got, stats = harness.decode((garbage + stream)[i : i + 1], persistent=True)
        frames += got
    assert frames == [frame_fields(v) for v in vectors]
    assert (frames, stats) == py_decode(garbage + stream)
    assert stats["discarded_bytes"] > 0


# --- randomized cross-check against the Python reference codec ----------------------------

U8, U16, U32 = st.integers(0, 0xFF), st.integers(0, 0xFFFF), st.integers(0, 0xFFFF_FFFF)
I8, I16 = st.integers(-0x80, 0x7F), st.integers(-0x8000, 0x7FFF)
CODE = {"B": U8, "b": I8, "H": U16, "h": I16, "I": U32, "Q": st.integers(0, 2**64 - 1)}


def fixed_message(cls: type) -> st.SearchStrategy:
    return st.builds(cls, *(CODE[c] for c in cls.CODES))


clusters = st.lists(st.builds(fp.ClusterRecord, U8, U8, U8, I8), max_size=fp.MAX_CLUSTERS)
telemetry = st.builds(
    lambda fixed, cl: fp.Telemetry(*fixed, clusters=tuple(cl)),
    st.tuples(*(CODE[c] for c in fp.Telemetry.CODES)),
    clusters,
)
unknown = st.builds(
    fp.Unknown,
    st.integers(0, 0xFF).filter(lambda t: t not in fp.REGISTRY),
    st.binary(max_size=fp.MAX_PAYLOAD),
)
messages = st.one_of(
    telemetry,
    unknown,
    *(fixed_message(cls) for cls in fp.REGISTRY.values() if cls is not fp.Telemetry),
)
frames = st.builds(fp.Frame, U16, U16, messages, st.integers(0, 3))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=frames)
def test_random_frames_encode_and_decode_identically_in_c_and_python(harness, frame):
    """FP-FRAME-1..7, FP-MSG-1: Python wire == C wire; each side decodes the other's bytes."""
    flat = py_flat(frame)
    wire = fp.encode_frame(frame)
    c_wire = harness.encode(*flat[:4], flat[4:])
    assert c_wire == wire.hex()
    assert py_decode(bytes.fromhex(c_wire))[0] == [flat]  # C -> Python
    assert harness.decode(wire)[0] == [flat]  # Python -> C


def noisy_stream(draw_frames: list[fp.Frame], noise: list[bytes], rng: random.Random) -> bytes:
    """Valid frames interleaved with random bytes, corrupted bytes and idle 0x00s."""
    out = bytearray()
    for frame, junk in zip(draw_frames, noise, strict=False):
        wire = bytearray(fp.encode_frame(frame))
        if rng.random() < 0.3:
            wire[rng.randrange(len(wire))] ^= 1 << rng.randrange(8)  # a line hit
        out += junk + wire
    return bytes(out)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    fs=st.lists(frames, max_size=6),
    noise=st.lists(st.binary(max_size=40) | st.just(b"\x01" * 300), min_size=6, max_size=6),
    seed=st.integers(0, 2**32 - 1),
    cuts=st.lists(st.integers(1, 64), min_size=1, max_size=8),
)
def test_noisy_streams_give_the_same_frames_and_counters(harness, fs, noise, seed, cuts):
    """FP-RX-1..7: on any byte stream, split anywhere, C and Python agree on frames, stats
    and the error of every dropped run."""
    data = noisy_stream(fs, noise, random.Random(seed))
    harness.reset()
    c_frames: list[list[int]] = []
    stats = dict.fromkeys(STAT_NAMES, 0)
    pos, i = 0, 0
    while pos < len(data):
        chunk = data[pos : pos + cuts[i % len(cuts)]]
        got, stats = harness.decode(chunk, persistent=True)
        c_frames += got
        pos, i = pos + len(chunk), i + 1
    assert (c_frames, stats) == py_decode(data)
    assert harness.rejects(data) == py_rejects(data)


LFP_ERR_RANGE = "ERR encode -3"  # refused by lfp_encode_frame itself, not by the harness


@pytest.mark.parametrize(
    ("command", "c_answer", "why"),
    [
        ((0x05, 1, 1, 4, [1, 1]), LFP_ERR_RANGE, "reserved flag bit 2 (FP-FRAME-3)"),
        ((0x02, 1, 1, 0, [0] * 11 + [17] + [0] * 68), LFP_ERR_RANGE, "TELEMETRY with k=17"),
        ((0x7F, 1, 1, 0, [1] * 248), LFP_ERR_RANGE, "unknown payload of 248 bytes"),
        ((0x01, 1, 1, 0, [1, 2, 3]), "ERR field count", "HELLO with 3 of 8 fields"),
        ((0x05, 1, 1, 0, [0x10000, 1]), "ERR range", "acked_seq over u16"),
        ((0x03, 1, 1, 0, [1, 1, 1, -32769, 0]), "ERR range", "EVENT value under i16"),
    ],
)
def test_c_refuses_what_python_refuses(harness, command, c_answer, why):
    """FP-FRAME-3, FP-FRAME-5, FP-MSG-3: values that do not fit are refused by both encoders."""
    type_code, address, seq, flags, fields = command
    assert harness.encode(type_code, address, seq, flags, fields) == c_answer, why
    with pytest.raises(fp.EncodeError):
        fp.encode_frame(fp.Frame(address, seq, fp.message_from_fields(type_code, fields), flags))


@pytest.mark.parametrize("payload_len", range(236, fp.MAX_PAYLOAD + 1))
@pytest.mark.parametrize("zero_at", [None, 0, 246, 253])
def test_cobs_block_boundaries_match_python(harness, payload_len, zero_at):
    """FP-FRAME-4/5: bodies with runs of 254+ non-zero bytes (COBS code 0xFF, no implied zero)."""
    payload = bytearray((i % 255) + 1 for i in range(payload_len))
    if zero_at is not None and zero_at < payload_len:
        payload[zero_at] = 0
    frame = fp.Frame(0x0101, 0x0202, fp.Unknown(0x7E, bytes(payload)), fp.FLAG_ACK_REQUESTED)
    wire = fp.encode_frame(frame)
    flat = py_flat(frame)
    assert harness.encode(*flat[:4], flat[4:]) == wire.hex()
    assert harness.decode(wire)[0] == [flat]


def test_harness_is_clean_under_address_and_undefined_sanitizers(tmp_path):
    """FP-RX-6/7: no out-of-bounds access or UB on vectors, random garbage, a 30 000-byte run,
    and encoding into an output buffer of exactly the frame's size (or one byte less)."""
    try:
        binary = build(tmp_path, "asan")
    except AssertionError as err:
        if "asan" in str(err) or "ubsan" in str(err):
            pytest.skip(f"this gcc has no sanitizer runtime: {err}")
        raise
    rng = random.Random(20261127)
    streams = [bytes(rng.randrange(256) for _ in range(rng.randrange(600))) for _ in range(40)]
    streams += [b"\x01" * 30000 + b"\x00", b"\xff" * 259 + b"\x00", b"\x00" * 10]
    for name in ("valid.json", "invalid.json"):
        if (VECTORS / name).exists():
            streams += [bytes.fromhex(v["hex"]) for v in json.loads((VECTORS / name).read_text())]
    sanitized = Harness(binary)
    try:
        for data in streams:
            assert sanitized.decode(data) == py_decode(data)
            assert sanitized.rejects(data) == py_rejects(data)
        for type_code in (*fp.REGISTRY, 0x7F):
            assert sanitized.encode(type_code, 1, 2, 0, [1] * 300).startswith("ERR")
        for v in load("valid.json"):  # an output buffer of exactly the frame's size, and 1 less
            size = len(v["hex"]) // 2
            assert sanitized.encode_into(size, *frame_fields(v)[:4], v["fields"]) == v["hex"]
            assert sanitized.encode_into(size - 1, *frame_fields(v)[:4], v["fields"]) == (
                "ERR encode -2"
            )
        sanitized._send("D " + "00" * MAX_LINE_BYTES)  # longer than the harness's line buffer
        assert sanitized._line() == "ERR line too long"
        assert sanitized.decode(b"\x00") == ([], dict.fromkeys(STAT_NAMES, 0))
    finally:
        sanitized.close()
    assert sanitized.proc.returncode == 0


def one_block_frame() -> fp.Frame:
    """A frame whose 254-byte body has no 0x00 (CRC included): its COBS is one 0xFF block."""
    for n in range(1, 256):
        frame = fp.Frame(0x0101, 0x0101, fp.Unknown(0x7E, bytes([n]) * 245), 1)
        if fp.encode_frame(frame)[0] == 0xFF:
            return frame
    raise AssertionError("every payload byte gives a CRC containing 0x00")


def test_non_canonical_cobs_ending_is_accepted_like_python(harness):
    """FP-FRAME-4: a body ending with a full 254-byte block decodes with or without the
    trailing `01` code byte; senders emit the canonical form (without it)."""
    frame = one_block_frame()
    canonical = fp.encode_frame(frame)
    assert len(canonical) == 1 + 254 + 1
    flat = py_flat(frame)
    assert harness.encode(*flat[:4], flat[4:]) == canonical.hex()
    for wire in (canonical, canonical[:-1] + b"\x01\x00"):
        assert harness.decode(wire) == py_decode(wire)
        assert harness.decode(wire)[0] == [flat]


def test_library_builds_under_the_strict_mcu_warning_set(tmp_path):
    """-Wconversion, -Wsign-conversion, -Wshadow, -Wcast-align ... with -Werror (Makefile)."""
    result = subprocess.run(
        ["make", "-C", str(C_DIR), f"BUILD={tmp_path}", "strict"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "strict_loaxa_fp.o").exists()
    assert (tmp_path / "strict_lfp_payload.o").exists()
