"""A simulated controller MCU on a real pty, speaking controller protocol v1 (firmware_protocol).

The agent opens ``.path``, a symlink to the pty's slave side, exactly as it would open
/dev/ttyUSB0. As SPEC.md v1.0 asks of a device, the simulator answers POLL (HELLO / TELEMETRY,
flag RESPONSE, FP-TIME-1), ACKs TIME_SYNC and applies a retried one once (FP-SEQ-3), stays
silent on broadcasts (FP-LINK-2) and other addresses (FP-LINK-1), and sends EVENT / PLAYBACK
with ACK_REQUESTED: point-to-point it resends the same frame every 500 ms up to 5 times
(FP-TIME-4); with ``rs485=True`` it queues them and hands the oldest out in answer to a POLL
(FP-LINK-4). Knobs let tests and demos misbehave it: garbage between frames, NACK busy,
vanishing (pty closed, symlink removed) and reappearing (new pty, same path), staying mute.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import tempfile
import threading
import time
import tty
from dataclasses import dataclass, field, replace
from pathlib import Path

from firmware_protocol import (
    ADDRESS_BROADCAST,
    FLAG_ACK_REQUESTED,
    FLAG_RESPONSE,
    UNKNOWN_I16,
    UNKNOWN_U16,
    Ack,
    AmpState,
    ClusterRecord,
    Event,
    Frame,
    Hello,
    MessageType,
    Nack,
    NackReason,
    Playback,
    PlaybackAction,
    Poll,
    PowerFlag,
    Priority,
    Source,
    StreamDecoder,
    Telemetry,
    TimeSync,
    Unknown,
    encode_frame,
)

log = logging.getLogger(__name__)
_TICK_S = 0.02  # how often the simulator looks at its pty and its retransmit timers


@dataclass
class Readings:
    """What the simulated station measures, in physical units (None = sensor not fitted)."""

    amp: AmpState = AmpState.ON
    audio_rms_dbfs: float | None = -18.0
    audio_peak_dbfs: float | None = -6.0
    mains_v: float | None = 220.5
    battery_v: float | None = 13.2
    on_battery: bool = False
    door_open: bool = False
    temperature_c: float | None = 31.5
    fm_forward_w: float | None = None
    fm_reflected_w: float | None = None
    clusters: tuple[ClusterRecord, ...] = field(
        default_factory=lambda: (ClusterRecord(0, 0, 0b101, -20), ClusterRecord(1, 0, 0b101, -22))
    )


def _raw(value: float | None, scale: int, unknown: int) -> int:
    return unknown if value is None else round(value * scale)


@dataclass
class _Pending:
    frame: Frame
    next_send: float
    tries: int = 1


class SimulatedMcu:
    def __init__(
        self,
        address: int = 1,
        *,
        path: str | Path | None = None,
        device_id: int = 0x00C0FFEE,
        firmware: tuple[int, int, int] = (1, 4, 2),
        hw_rev: int = 3,
        retransmit_s: float = 0.5,
        max_tries: int = 6,
        rs485: bool = False,
    ) -> None:
        self.address = address
        self.rs485 = rs485
        self._dir = None if path else tempfile.mkdtemp(prefix="loaxa-mcu-")
        self.path = str(path or Path(self._dir or ".") / "ttyMCU")
        self.hello = Hello(device_id, *firmware, hw_rev, 0b1110_1001, 2, 1)
        self.readings = Readings()
        self.retransmit_s = retransmit_s
        self.max_tries = max_tries
        self.counts = {
            "polls": 0,
            "acks": 0,
            "time_syncs": 0,
            "frames_in": 0,
            "retransmits": 0,
            "errors": 0,
        }
        self.last_time_sync: TimeSync | None = None
        self.nacks_received: list[Nack] = []
        self._lock = threading.Lock()
        self._seq = 0
        self._booted = time.monotonic()
        self._pending: dict[int, _Pending] = {}  # seq -> unACKed EVENT/PLAYBACK
        self._sent: list[Frame] = []
        self._noise = False
        self._mute = False
        self._busy = 0  # polls still to answer with NACK busy
        self._last_in: tuple[int, int] | None = None  # (seq, type) last processed, FP-SEQ-3
        self._last_answer: Frame | None = None
        self._master: int | None = None
        self._slave: int | None = None
        self._decoder = StreamDecoder()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- lifecycle -----------------------------------------------------------------------

    def start(self) -> SimulatedMcu:
        self._open_pty()
        self._thread = threading.Thread(target=self._run, name="sim-mcu", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(5)
        self._close_pty()
        if self._dir:
            with contextlib.suppress(OSError):
                os.rmdir(self._dir)

    def __enter__(self) -> SimulatedMcu:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- knobs ---------------------------------------------------------------------------

    @property
    def uptime_s(self) -> int:
        return int(time.monotonic() - self._booted)

    def set_readings(self, **changes: object) -> None:
        """Change what TELEMETRY reports, e.g. ``set_readings(on_battery=True, mains_v=None)``."""
        with self._lock:
            self.readings = replace(self.readings, **changes)  # type: ignore[arg-type]

    def emit_event(self, code: int, cluster: int = 0xFF, value: int = 0) -> int:
        """Send an EVENT (ACK_REQUESTED); returns its seq. Retransmitted until ACKed."""
        return self._send_reliable(Event(int(code), cluster, self.uptime_s, value))

    def start_program(
        self,
        source: int = Source.PROVINCIAL_RELAY,
        priority: int = Priority.NORMAL,
        cluster_mask: int = 0b11,
    ) -> int:
        msg = Playback(
            PlaybackAction.START, int(source), int(priority), cluster_mask, self.uptime_s
        )
        return self._send_reliable(msg)

    def stop_program(
        self,
        source: int = Source.PROVINCIAL_RELAY,
        priority: int = Priority.NORMAL,
        cluster_mask: int = 0b11,
    ) -> int:
        msg = Playback(PlaybackAction.STOP, int(source), int(priority), cluster_mask, self.uptime_s)
        return self._send_reliable(msg)

    def retransmit(self, seq: int) -> None:
        """Send an already-sent frame again with the same seq, as if its ACK had been lost."""
        with self._lock:
            frame = next(f for f in self._sent if f.seq == seq)
            self._write(frame)

    def unacked(self) -> list[int]:
        with self._lock:
            return sorted(self._pending)

    def noise(self, enabled: bool) -> None:
        """Write garbage (random bytes, then a delimiter) before every frame."""
        self._noise = enabled

    def send_raw(self, data: bytes) -> None:
        """Put arbitrary bytes on the line (hand-made bad frames for receiver tests)."""
        with self._lock:
            if self._master is not None:
                os.write(self._master, data)

    def nack_busy(self, polls: int) -> None:
        """Answer the next ``polls`` POLLs with NACK reason 5 (busy)."""
        self._busy = polls

    def mute(self, enabled: bool) -> None:
        """Keep the pty but stop answering (a hung controller)."""
        self._mute = enabled

    def vanish(self) -> None:
        """Close the pty and remove the path (USB adapter pulled); the agent must reopen."""
        with self._lock:
            self._close_pty()

    def reappear(self) -> None:
        """A new pty behind the same path; counters keep running (the MCU did not reboot)."""
        with self._lock:
            self._open_pty()

    # --- protocol ------------------------------------------------------------------------

    def _next_seq(self) -> int:
        self._seq = (self._seq + 1) & 0xFFFF
        return self._seq

    def _send_reliable(self, message: Event | Playback) -> int:
        with self._lock:
            frame = Frame(self.address, self._next_seq(), message, FLAG_ACK_REQUESTED)
            self._pending[frame.seq] = _Pending(frame, time.monotonic() + self.retransmit_s)
            if not self.rs485:  # on RS-485 it waits in the queue for a POLL (FP-LINK-4)
                self._write(frame)
            return frame.seq

    def _telemetry(self) -> Telemetry:
        r = self.readings
        flags = (
            (PowerFlag.ON_BATTERY if r.on_battery else 0)
            | (PowerFlag.MAINS_PRESENT if r.mains_v else 0)
            | (PowerFlag.DOOR_OPEN if r.door_open else 0)
        )
        return Telemetry(
            uptime_s=self.uptime_s,
            amp_state=int(r.amp),
            audio_rms=_raw(r.audio_rms_dbfs, 100, UNKNOWN_I16),
            audio_peak=_raw(r.audio_peak_dbfs, 100, UNKNOWN_I16),
            mains=_raw(r.mains_v, 10, UNKNOWN_U16),
            battery=_raw(r.battery_v, 1000, UNKNOWN_U16),
            power_flags=int(flags),
            temperature=_raw(r.temperature_c, 100, UNKNOWN_I16),
            fm_forward=_raw(r.fm_forward_w, 10, UNKNOWN_U16),
            fm_reflected=_raw(r.fm_reflected_w, 10, UNKNOWN_U16),
            clusters=tuple(r.clusters),
        )

    def _handle(self, frame: Frame) -> None:
        self.counts["frames_in"] += 1
        if self._mute or frame.address not in (self.address, ADDRESS_BROADCAST):
            return
        if frame.is_broadcast:  # FP-LINK-2: act, never answer
            if isinstance(frame.message, TimeSync):
                self.last_time_sync = frame.message
            return
        if (frame.seq, frame.type) == self._last_in and self._last_answer is not None:
            self._write(self._last_answer)  # FP-SEQ-3: a retry gets the same answer again
            return
        answer = self._answer(frame)
        if answer is not None:
            self._write(answer)
        busy = answer is not None and answer.message == Nack(frame.seq, frame.type, NackReason.BUSY)
        if busy:
            return  # busy: the frame was not processed, so its retry is a fresh attempt
        self._last_in, self._last_answer = (frame.seq, frame.type), answer

    def _answer(self, frame: Frame) -> Frame | None:
        msg = frame.message
        if isinstance(msg, Poll):
            self.counts["polls"] += 1
            if self._busy:
                self._busy -= 1
                return self._frame(Nack(frame.seq, frame.type, NackReason.BUSY))
            if self.rs485 and self._pending:
                queued = self._pending[min(self._pending)].frame
                return replace(queued, flags=FLAG_RESPONSE | FLAG_ACK_REQUESTED)
            if msg.requested_type == MessageType.HELLO:
                return self._frame(self.hello, FLAG_RESPONSE)
            if msg.requested_type == MessageType.TELEMETRY:
                return self._frame(self._telemetry(), FLAG_RESPONSE)
            return self._frame(Nack(frame.seq, frame.type, NackReason.BAD_VALUE))
        if isinstance(msg, TimeSync):
            self.counts["time_syncs"] += 1
            self.last_time_sync = msg
            return self._frame(Ack(frame.seq, frame.type))
        if isinstance(msg, Ack):
            pending = self._pending.get(msg.acked_seq)
            if pending and pending.frame.type == msg.acked_type:
                del self._pending[msg.acked_seq]
            self.counts["acks"] += 1
            return None
        if isinstance(msg, Unknown):
            return self._frame(Nack(frame.seq, frame.type, NackReason.UNKNOWN_TYPE))
        if isinstance(msg, Nack):
            self.nacks_received.append(msg)
        return None

    def _frame(self, message: Hello | Telemetry | Ack | Nack, flags: int = 0) -> Frame:
        return Frame(self.address, self._next_seq(), message, flags)

    def _write(self, frame: Frame) -> None:
        if self._master is None:
            return
        if frame.flags & FLAG_ACK_REQUESTED and frame not in self._sent:
            self._sent = [*self._sent[-63:], frame]
        data = encode_frame(frame)
        if self._noise:
            data = os.urandom(17) + b"\x00" + data
        try:
            os.write(self._master, data)
        except OSError as err:  # nobody has the slave open and the buffer is full
            log.debug("sim MCU write failed: %s", err)

    # --- pty and thread ------------------------------------------------------------------

    def _open_pty(self) -> None:
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)  # no echo, no line discipline: a UART passes bytes verbatim
        os.set_blocking(self._master, False)
        tmp = f"{self.path}.new"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        os.symlink(os.ttyname(self._slave), tmp)
        os.replace(tmp, self.path)  # atomic: the agent never sees a half-made path
        self._decoder = StreamDecoder()

    def _close_pty(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        for fd in (self._master, self._slave):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._master = self._slave = None

    def _run(self) -> None:
        while not self._stop.is_set():
            master = self._master
            if master is None:
                self._stop.wait(_TICK_S)
                continue
            try:
                ready, _, _ = select.select([master], [], [], _TICK_S)
                data = os.read(master, 4096) if ready else b""
            except (OSError, ValueError):
                data = b""  # the pty was closed under us by vanish()
            with self._lock:
                if data and master == self._master:
                    for frame in self._decoder.feed(data):
                        self._handle_safely(frame)
                self._retransmit_due()

    def _handle_safely(self, frame: Frame) -> None:
        try:
            self._handle(frame)
        except Exception:  # a simulator bug must show up in the log, not silently stop it
            self.counts["errors"] += 1
            log.exception("simulated MCU failed on %r", frame)

    def _retransmit_due(self) -> None:
        now = time.monotonic()
        for seq, pending in list(self._pending.items()):
            if self.rs485 or self._mute or self._master is None or now < pending.next_send:
                continue
            if pending.tries >= self.max_tries:
                del self._pending[seq]
                continue
            pending.tries += 1
            pending.next_send = now + self.retransmit_s
            self.counts["retransmits"] += 1
            self._write(pending.frame)
