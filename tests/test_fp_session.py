"""Link rules as pure helpers: seq counters, retries, who answers, ACK/NACK (FP-SEQ, FP-LINK)."""

from __future__ import annotations

from cobs import cobs

from firmware_protocol import (
    Ack,
    BadVersionError,
    Event,
    Frame,
    Hello,
    Nack,
    NackReason,
    StreamDecoder,
    TimeSync,
    crc16,
    encode_frame,
)
from firmware_protocol.session import RetryFilter, SeqCounter, ack_for, must_answer, nack_for


def test_seq_counter_wraps() -> None:
    """FP-SEQ-1: +1 per frame, 65535 -> 0."""
    counter = SeqCounter(65534)
    assert [counter.next() for _ in range(3)] == [65534, 65535, 0]


def test_broadcast_and_foreign_frames_not_answered() -> None:
    """FP-LINK-1, FP-LINK-2: only the addressed device answers; nobody answers a broadcast."""
    sync = TimeSync(1_795_000_000_000)
    assert must_answer(Frame(0x0012, 1, sync), own_address=0x0012)
    assert not must_answer(Frame(0x0013, 1, sync), own_address=0x0012)
    assert not must_answer(Frame(0xFFFF, 1, sync), own_address=0x0012)
    assert must_answer(Frame(0x0013, 1, Event(1)), own_address=None)  # the master
    assert not must_answer(Frame(0xFFFF, 1, Event(1)), own_address=None)


def test_retry_answered_again_not_processed_twice() -> None:
    """FP-SEQ-2, FP-SEQ-3: same seq and type = retry; the cached answer is sent again."""
    retries, seq = RetryFilter(), SeqCounter()
    event = Frame(0x0012, 7, Event(1, 0xFF, 10), 0x01)
    processed = []
    for _ in range(3):  # the device resends until it sees the ACK
        if retries.is_retry(event):
            answer = retries.answer_to_repeat(event)
        else:
            processed.append(event)
            answer = ack_for(event, seq.next())
            retries.record(event, answer)
        assert answer == Frame(0x0012, 0, Ack(7, 0x03))
    assert processed == [event]
    assert not retries.is_retry(Frame(0x0012, 8, Event(2, 0xFF, 11), 0x01))  # new seq
    assert not retries.is_retry(Frame(0x0013, 7, Event(1, 0xFF, 10), 0x01))  # other device


def test_hello_is_never_a_retry() -> None:
    """FP-SEQ-4: after a reboot the device restarts at seq 0; its HELLO is always processed."""
    retries = RetryFilter()
    hello = Frame(0x0012, 0, Hello(42), 0x02)
    retries.record(hello, None)
    assert not retries.is_retry(hello)
    retries.forget(0x0012)
    assert retries.answer_to_repeat(hello) is None


def test_nack_unsupported_version_from_rejected_header() -> None:
    """FP-VER-2: a CRC-valid frame of version 2 is dropped and answered NACK reason 4."""
    head = bytes([2, 0x12, 0x00, 0x09, 0x00, 0x03, 0x01]) + bytes(9)
    rejected: list[BadVersionError] = []
    decoder = StreamDecoder(on_reject=rejected.append)  # type: ignore[arg-type]
    decoder.feed(cobs.encode(head + crc16(head).to_bytes(2, "little")) + b"\x00")
    header = rejected[0].header
    assert must_answer(header, own_address=None)
    nack = nack_for(header, NackReason.UNSUPPORTED_VERSION, seq=5)
    assert nack == Frame(0x0012, 5, Nack(9, 0x03, 4))
    assert encode_frame(nack)[-1] == 0
