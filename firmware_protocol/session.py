"""Pure helpers for the link rules of SPEC.md sections 4-5: sequence counters, retry
detection, who answers, and ACK/NACK construction. No I/O and no clock: callers own timing.
"""

from __future__ import annotations

from dataclasses import dataclass

from firmware_protocol.enums import ADDRESS_BROADCAST, MessageType, NackReason
from firmware_protocol.framing import Frame, Header
from firmware_protocol.messages import Ack, Nack


class SeqCounter:
    """A sender's 16-bit frame counter: 0 after power-up, +1 per new frame, wraps (FP-SEQ-1)."""

    def __init__(self, start: int = 0) -> None:
        self._next = start & 0xFFFF

    def next(self) -> int:
        seq, self._next = self._next, (self._next + 1) & 0xFFFF
        return seq


def must_answer(frame: Frame | Header, own_address: int | None) -> bool:
    """Whether this receiver answers `frame` at all (FP-LINK-1, FP-LINK-2).

    `own_address` is the device's address, or None for the master (which receives only
    frames from devices, all addressed to it). Broadcasts are never answered."""
    if frame.address == ADDRESS_BROADCAST:
        return False
    return own_address is None or frame.address == own_address


def ack_for(frame: Frame | Header, seq: int) -> Frame:
    """The ACK answering `frame`; `seq` is the answerer's own next seq (FP-SEQ-2).
    Answers carry the device's address, which is `frame.address` in both directions."""
    return Frame(frame.address, seq, Ack(frame.seq, frame.type))


def nack_for(frame: Frame | Header, reason: NackReason | int, seq: int) -> Frame:
    """The NACK answering `frame` (or the `Header` of a dropped frame, see `on_reject`)."""
    return Frame(frame.address, seq, Nack(frame.seq, frame.type, int(reason)))


@dataclass
class _Processed:
    seq: int
    type: int
    answer: Frame | None


class RetryFilter:
    """Remembers the last processed (seq, type) per peer address and the answer sent to it,
    so a retry is answered again but not processed twice (FP-SEQ-3). A HELLO is never a
    retry: the peer rebooted and restarted its counter (FP-SEQ-4)."""

    def __init__(self) -> None:
        self._last: dict[int, _Processed] = {}

    def is_retry(self, frame: Frame) -> bool:
        last = self._last.get(frame.address)
        if last is None or frame.type == MessageType.HELLO:
            return False
        return (last.seq, last.type) == (frame.seq, frame.type)

    def answer_to_repeat(self, frame: Frame) -> Frame | None:
        """The answer sent the first time, for a retry (None if there was none)."""
        last = self._last.get(frame.address)
        return last.answer if last is not None and self.is_retry(frame) else None

    def record(self, frame: Frame, answer: Frame | None) -> None:
        """Call after processing `frame` and sending `answer` (or None)."""
        self._last[frame.address] = _Processed(frame.seq, frame.type, answer)

    def forget(self, address: int) -> None:
        self._last.pop(address, None)
