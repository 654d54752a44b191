"""StreamDecoder: bytes from a serial line in, frames out; never raises (SPEC.md section 6).

Resynchronisation: the decoder collects the bytes between two 0x00 delimiters (a "run").
Each non-empty run is decoded once its delimiter arrives; a run that does not yield a frame
is dropped whole, so the next frame after any garbage is found at the next 0x00. Runs longer
than `max_encoded(max_body)` are not buffered, only counted (bounded memory).

Counters (FP-RX-*):
- frames: frames returned (including those with an unknown type);
- discarded_bytes: every byte of a run that yielded no frame, plus its delimiter;
  idle 0x00s (empty runs) and bytes still waiting for a delimiter are not counted;
- one of oversize / cobs_errors / bad_length / crc_errors / bad_version per dropped run;
- unknown_type: returned frames whose type has no class (also counted in `frames`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass

from firmware_protocol.errors import (
    BadLengthError,
    BadVersionError,
    CobsError,
    CrcError,
    OversizeError,
    ProtocolError,
)
from firmware_protocol.framing import (
    MAX_BODY,
    MIN_BODY,
    Frame,
    cobs_decode,
    decode_body,
    max_encoded,
)
from firmware_protocol.messages import Unknown

log = logging.getLogger(__name__)

_COUNTER_OF_ERROR: dict[type[ProtocolError], str] = {
    OversizeError: "oversize",
    CobsError: "cobs_errors",
    BadLengthError: "bad_length",
    CrcError: "crc_errors",
    BadVersionError: "bad_version",
}

RejectHandler = Callable[[ProtocolError], None]


@dataclass
class DecoderStats:
    frames: int = 0
    discarded_bytes: int = 0
    crc_errors: int = 0
    oversize: int = 0
    bad_version: int = 0
    unknown_type: int = 0
    bad_length: int = 0
    cobs_errors: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class StreamDecoder:
    """Incremental decoder. `on_reject(err)` (optional) sees each dropped run's error;
    `err.header` is set when the frame's CRC was good, so the owner can NACK it."""

    def __init__(self, max_body: int = MAX_BODY, on_reject: RejectHandler | None = None) -> None:
        if not MIN_BODY <= max_body <= MAX_BODY:
            raise ValueError(f"max_body={max_body} must be within {MIN_BODY}..{MAX_BODY}")
        self.max_body = max_body
        self.stats = DecoderStats()
        self._on_reject = on_reject
        self._limit = max_encoded(max_body)
        self._run = bytearray()
        self._run_len = 0  # bytes seen in the current run, buffered or not

    def feed(self, chunk: bytes | bytearray | memoryview) -> list[Frame]:
        """Consume `chunk` (any size, may split frames anywhere); return completed frames.
        Any byte content is accepted; only a non-bytes-like argument (a programming error)
        raises TypeError."""
        data = bytes(chunk)
        frames: list[Frame] = []
        start = 0
        while (end := data.find(0, start)) >= 0:
            self._collect(data, start, end)
            self._finish_run(frames)
            start = end + 1
        self._collect(data, start, len(data))
        return frames

    @property
    def pending(self) -> int:
        """Bytes received since the last delimiter."""
        return self._run_len

    @property
    def buffered(self) -> int:
        """Bytes held in memory; never more than `max_encoded(max_body)` (FP-RX-6)."""
        return len(self._run)

    def _collect(self, data: bytes, start: int, end: int) -> None:
        if start == end:
            return
        self._run_len += end - start
        if self._run_len <= self._limit:
            self._run += data[start:end]
        elif self._run:
            self._run.clear()  # over the limit: stop buffering, keep counting

    def _finish_run(self, frames: list[Frame]) -> None:
        run_len, run = self._run_len, bytes(self._run)
        self._run.clear()
        self._run_len = 0
        if run_len == 0:
            return  # idle fill (FP-FRAME-2)
        try:
            if run_len > self._limit:
                raise OversizeError(f"run of {run_len} bytes without a delimiter")
            frame = decode_body(cobs_decode(run), self.max_body)
        except ProtocolError as err:
            self._reject(err, run_len)
            return
        self.stats.frames += 1
        if isinstance(frame.message, Unknown):
            self.stats.unknown_type += 1
        frames.append(frame)

    def _reject(self, err: ProtocolError, run_len: int) -> None:
        counter = _COUNTER_OF_ERROR[type(err)]
        setattr(self.stats, counter, getattr(self.stats, counter) + 1)
        self.stats.discarded_bytes += run_len + 1
        log.debug("dropped %d-byte run: %s", run_len, err)
        if self._on_reject is not None:
            self._on_reject(err)
