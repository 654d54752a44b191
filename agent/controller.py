"""Serial link to the station's controller MCU (protocol: firmware_protocol/SPEC.md, v1).

One thread owns the port (pyserial ``serial_for_url``: /dev/ttyUSB0, rfc2217://, a pty path):

- at open and whenever the controller comes back: POLL HELLO, then TIME_SYNC (and hourly);
- every ``poll_interval_s``: POLL TELEMETRY; a request is sent up to 1 + ``retries`` times,
  repeating its seq, waiting ``response_timeout_ms`` for the answer each time;
- unsolicited EVENT / PLAYBACK frames are handled whenever bytes arrive, ACKed when they ask
  for it; a retransmission (same type and seq, our ACK was lost) is ACKed again but not
  processed twice;
- garbage on the line is skipped by the StreamDecoder (counted as ``resyncs``);
- a port that fails (SerialException/OSError) or whose device file is gone or replaced is
  closed and reopened every ``reopen_interval_s``.

Reachability: True after any answered request, False when a request exhausts its retries or
the port is lost. Nothing raised inside the thread escapes it: errors are logged and counted.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Annotated, Any

import serial
from pydantic import BaseModel, ConfigDict, Field

from firmware_protocol import (
    ADDRESS_BROADCAST,
    Ack,
    BadLengthError,
    Event,
    Frame,
    Hello,
    Message,
    MessageType,
    Nack,
    NackReason,
    Playback,
    Poll,
    ProtocolError,
    StreamDecoder,
    Telemetry,
    TimeSync,
    Unknown,
    encode_frame,
)

log = logging.getLogger(__name__)
TZ_OFFSET_MIN = 420  # Asia/Ho_Chi_Minh, UTC+7 all year (no daylight saving)
_READ_TIMEOUT_S = 0.05  # granularity of the read loop: how fast stop() and deadlines are seen
_RECENT_SEQS = 64  # (type, seq) pairs remembered to spot retransmitted EVENT/PLAYBACK
_MAX_QUEUED_PER_POLL = 8  # FP-LINK-4: queued frames taken per polling cycle
Answers = Callable[[Frame, int], bool]  # (incoming frame, our request's seq) -> is the answer


class ControllerConfig(BaseModel):
    """``[controller]``: where and how to reach the controller MCU."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(
        min_length=1,
        description="pyserial URL: /dev/ttyUSB0, rfc2217://host:port, or a pty path",
    )
    baudrate: Annotated[int, Field(gt=0, le=4_000_000)] = Field(
        115200, description="UART speed (8N1); 9600 on radio modems"
    )
    address: Annotated[int, Field(ge=1, le=0xFFFE)] = Field(
        1, description="device address of the controller on the line (1..65534)"
    )
    poll_interval_s: Annotated[float, Field(gt=0, le=3600)] = Field(
        5.0, description="seconds between POLL TELEMETRY requests"
    )
    response_timeout_ms: Annotated[int, Field(ge=10, le=10_000)] = Field(
        250, description="how long to wait for a response before retrying (ms)"
    )
    retries: Annotated[int, Field(ge=0, le=10)] = Field(
        3, description="retries of a request after the first attempt before giving up"
    )
    reopen_interval_s: Annotated[float, Field(gt=0, le=3600)] = Field(
        5.0, description="seconds between attempts to reopen a port that vanished"
    )
    time_sync_interval_s: Annotated[float, Field(gt=0, le=86400)] = Field(
        3600.0, description="seconds between TIME_SYNC messages (also sent at start and reconnect)"
    )


def _is_busy(message: Message) -> bool:
    return isinstance(message, Nack) and message.reason == NackReason.BUSY


class PortGone(Exception):
    """The device file disappeared or now names another device."""


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


def _device_identity(url: str) -> tuple[int, int, int] | None:
    """(dev, inode, rdev) of a local device path (following symlinks); None for URLs."""
    if "://" in url:
        return None
    st = os.stat(url)
    return st.st_dev, st.st_ino, st.st_rdev


class ControllerLink:
    """Polls the controller in its own thread and hands decoded messages to callbacks.

    Callbacks run in the link's thread; an exception in one is logged and counted, never
    fatal. ``on_reachable(bool)`` is called on every change (and the first determination).
    """

    def __init__(
        self,
        config: ControllerConfig,
        *,
        on_hello: Callable[[Hello], None] | None = None,
        on_telemetry: Callable[[Telemetry], None] | None = None,
        on_event: Callable[[Event], None] | None = None,
        on_playback: Callable[[Playback], None] | None = None,
        on_reachable: Callable[[bool], None] | None = None,
        wall_ms: Callable[[], int] = _wall_ms,
    ) -> None:
        self.config = config
        self._callbacks = {
            "hello": on_hello,
            "telemetry": on_telemetry,
            "event": on_event,
            "playback": on_playback,
            "reachable": on_reachable,
        }
        self._wall_ms = wall_ms
        self.reachable = False
        self._reported: bool | None = None
        self.latest_telemetry: Telemetry | None = None
        self.hello: Hello | None = None
        self._counts = dict.fromkeys(
            ("polls", "timeouts", "retries", "reopens", "open_failures", "port_errors",
             "acks_sent", "nacks_sent", "nacks_received", "duplicates", "time_syncs",
             "other_address", "unexpected", "resyncs", "callback_errors", "internal_errors"),
            0,
        )  # fmt: skip
        self._decoder = StreamDecoder(on_reject=self._on_reject)
        self._seq = 0
        self._recent: deque[tuple[int, int]] = deque(maxlen=_RECENT_SEQS)
        self._port: serial.SerialBase | None = None
        self._identity: tuple[int, int, int] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="controller-link", daemon=True)

    # --- public --------------------------------------------------------------------------

    def start(self) -> ControllerLink:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)
        self._close()

    @property
    def stats(self) -> dict[str, int]:
        return {**self._decoder.stats.as_dict(), **self._counts}

    # --- thread --------------------------------------------------------------------------

    def _run(self) -> None:
        opened_before = False
        while not self._stop.is_set():
            try:
                self._open()
                if opened_before:
                    self._counts["reopens"] += 1
                opened_before = True
                self._session()
            except (serial.SerialException, OSError, PortGone) as err:
                self._counts["port_errors" if self._port else "open_failures"] += 1
                log.warning("controller port %s: %s", self.config.url, err)
            except Exception:  # a bug must not kill the link; it is logged and counted
                self._counts["internal_errors"] += 1
                log.exception("controller link error")
            self._close()
            if not self._stop.is_set():
                self._set_reachable(False)
            self._stop.wait(self.config.reopen_interval_s)

    def _open(self) -> None:
        self._identity = _device_identity(self.config.url)
        self._port = serial.serial_for_url(
            self.config.url, baudrate=self.config.baudrate, timeout=_READ_TIMEOUT_S
        )
        self._decoder.feed(b"\x00")  # end any partial run left from the previous port
        self._recent.clear()
        log.info("controller port %s open", self.config.url)

    def _close(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            try:
                port.close()
            except (serial.SerialException, OSError) as err:
                log.debug("closing %s: %s", self.config.url, err)

    def _session(self) -> None:
        """Runs while the port is open; returns on stop(), raises when the port fails."""
        cfg = self.config
        need_hello = True
        next_poll = next_sync = time.monotonic()
        while not self._stop.is_set():
            if self._identity is not None and _device_identity(cfg.url) != self._identity:
                raise PortGone(f"{cfg.url} is gone or now names another device")
            now = time.monotonic()
            if now >= next_poll:
                next_poll = now + cfg.poll_interval_s
                if need_hello:
                    need_hello = not self._poll(MessageType.HELLO)
                    next_sync = now  # a controller that (re)appeared gets the time at once
                if not need_hello:
                    need_hello = not self._poll(MessageType.TELEMETRY)
                if not need_hello and now >= next_sync:
                    # Unanswered, it counts as lost like a poll: HELLO and TIME_SYNC on return.
                    need_hello = not self._time_sync()
                    next_sync = now + cfg.time_sync_interval_s
            self._pump(min(next_poll, time.monotonic() + 0.5), lambda f: False)

    # --- requests ------------------------------------------------------------------------

    def _poll(self, requested: MessageType) -> bool:
        """POLL for HELLO/TELEMETRY. On RS-485 a device answers with a queued EVENT/PLAYBACK
        first (FP-LINK-4): that is ACKed and the poll repeated at once, up to 8 times."""
        for _ in range(1 + _MAX_QUEUED_PER_POLL):
            self._counts["polls"] += 1
            frame = self._request(Poll(int(requested)), lambda f, _seq: f.is_response)
            if frame is None or isinstance(frame.message, Nack):
                return False
            self._dispatch(frame)
            if frame.type == requested:
                return True
        return True  # it answers; the requested message comes with the next cycle

    def _time_sync(self) -> bool:
        """Send the time; False when the controller did not answer at all."""
        sync_type = int(MessageType.TIME_SYNC)

        def answers(f: Frame, seq: int) -> bool:
            m = f.message
            return isinstance(m, Ack) and m.acked_type == sync_type and m.acked_seq == seq

        answer = self._request(TimeSync(self._wall_ms(), TZ_OFFSET_MIN), answers)
        if answer is None or not isinstance(answer.message, Ack):
            log.warning("controller did not ACK TIME_SYNC")
        else:
            self._counts["time_syncs"] += 1
        return answer is not None

    def _request(self, message: Message, answers: Answers) -> Frame | None:
        """Send with retries (same seq each time, FP-TIME-2); the answer or a NACK of it.
        None when every attempt timed out (a NACK "busy" counts as a timeout)."""
        frame = Frame(self.config.address, self._next_seq(), message)
        wire = encode_frame(frame)

        def answer_or_nack(f: Frame) -> bool:
            m = f.message
            return answers(f, frame.seq) or (isinstance(m, Nack) and m.nacked_seq == frame.seq)

        for attempt in range(1 + self.config.retries):
            if self._stop.is_set():
                return None
            if attempt:
                self._counts["retries"] += 1
            self._write(wire)
            deadline = time.monotonic() + self.config.response_timeout_ms / 1000
            answer = self._pump(deadline, answer_or_nack)
            if answer is None or _is_busy(answer.message):
                self._counts["timeouts"] += 1
                continue
            self._set_reachable(True)
            if isinstance(answer.message, Nack):
                self._log_nack(answer.message)
            return answer
        self._set_reachable(False)
        return None

    def _next_seq(self) -> int:
        self._seq = (self._seq + 1) & 0xFFFF
        return self._seq

    def _write(self, data: bytes) -> None:
        assert self._port is not None
        self._port.write(data)

    def _pump(self, deadline: float, answers: Callable[[Frame], bool]) -> Frame | None:
        """Read and dispatch frames until ``deadline``; return early with the first answer."""
        assert self._port is not None
        while not self._stop.is_set() and time.monotonic() < deadline:
            chunk = self._port.read(max(1, self._port.in_waiting))
            if not chunk:
                continue
            found = None
            for frame in self._decoder.feed(chunk):
                if frame.address != self.config.address:
                    self._counts["other_address"] += 1
                elif found is None and answers(frame):
                    found = frame
                else:
                    self._dispatch(frame)
            if found is not None:
                return found
        return None

    # --- incoming ------------------------------------------------------------------------

    def _dispatch(self, frame: Frame) -> None:
        msg = frame.message
        if isinstance(msg, Unknown):  # FP-VER-3: count, do not act, answer NACK 2
            self._counts["unexpected"] += 1
            if not frame.is_broadcast:
                self._send_nack(frame.seq, frame.type, NackReason.UNKNOWN_TYPE)
            return
        if frame.ack_requested:
            self._send_reply(Ack(frame.seq, frame.type))
            self._counts["acks_sent"] += 1
            key = (frame.type, frame.seq)
            if key in self._recent:
                self._counts["duplicates"] += 1
                return
            self._recent.append(key)
        if isinstance(msg, Telemetry):
            if self.latest_telemetry and msg.uptime_s < self.latest_telemetry.uptime_s:
                self._recent.clear()  # the MCU rebooted: its seq numbers start again
            self.latest_telemetry = msg
            self._call("telemetry", msg)
        elif isinstance(msg, Hello):
            self._recent.clear()  # FP-SEQ-4: a HELLO means the device restarted its seq
            self.hello = msg
            self._call("hello", msg)
        elif isinstance(msg, Event):
            self._call("event", msg)
        elif isinstance(msg, Playback):
            self._call("playback", msg)
        elif isinstance(msg, Nack):
            self._log_nack(msg)
        else:
            self._counts["unexpected"] += 1
            log.info("ignoring unexpected %s from the controller", type(msg).__name__)

    def _log_nack(self, msg: Nack) -> None:
        self._counts["nacks_received"] += 1
        log.warning("controller NACKed seq %d type %#04x: reason %d",
                    msg.nacked_seq, msg.nacked_type, msg.reason)  # fmt: skip

    def _send_reply(self, message: Ack | Nack) -> None:
        self._write(encode_frame(Frame(self.config.address, self._next_seq(), message)))

    def _on_reject(self, err: ProtocolError) -> None:
        """A dropped run (the decoder resynchronises at the next 0x00). A CRC-valid frame of
        another version or a bad payload size is NACKed (FP-VER-2 reason 4, FP-MSG-2 reason 3)."""
        self._counts["resyncs"] += 1
        log.debug("skipped a damaged frame: %s", err)
        header = err.header
        if header is None or header.address == ADDRESS_BROADCAST or self._port is None:
            return
        reason = NackReason.UNSUPPORTED_VERSION
        if isinstance(err, BadLengthError):
            reason = NackReason.BAD_LENGTH
        self._send_nack(header.seq, header.type, reason)

    def _send_nack(self, seq: int, type_code: int, reason: NackReason) -> None:
        self._send_reply(Nack(seq, type_code, reason))
        self._counts["nacks_sent"] += 1

    def _call(self, name: str, arg: Any) -> None:
        callback = self._callbacks[name]
        if callback is None:
            return
        try:
            callback(arg)
        except Exception:
            self._counts["callback_errors"] += 1
            log.exception("controller %s callback failed", name)

    def _set_reachable(self, reachable: bool) -> None:
        self.reachable = reachable
        if reachable != self._reported:
            self._reported = reachable
            log.log(logging.INFO if reachable else logging.WARNING,
                    "controller %s", "reachable" if reachable else "unreachable")  # fmt: skip
            self._call("reachable", reachable)
