"""The simulated MCU, driven directly over its pty with the codec (no agent code involved)."""

from __future__ import annotations

import os

import pytest
import serial

from firmware_protocol import (
    FLAG_ACK_REQUESTED,
    FLAG_RESPONSE,
    Ack,
    AmpState,
    EventCode,
    Frame,
    MessageType,
    Nack,
    NackReason,
    Poll,
    StreamDecoder,
    TimeSync,
    Unknown,
    encode_frame,
)
from loaxa.sim.mcu import SimulatedMcu
from tests.servers import wait_until


class Client:
    """A bare master on the sim's pty: writes frames, collects decoded ones."""

    def __init__(self, path: str) -> None:
        self.port = serial.serial_for_url(path, 115200, timeout=0.02)
        self.decoder = StreamDecoder()
        self.frames: list[Frame] = []
        self.seq = 0

    def send(self, message, address: int = 1) -> int:
        self.seq += 1
        self.port.write(encode_frame(Frame(address, self.seq, message)))
        return self.seq

    def wait_for(self, pred, what: str) -> Frame:
        def found():
            self.frames += self.decoder.feed(self.port.read(4096))
            return next((f for f in self.frames if pred(f)), None)

        return wait_until(found, 10, what=what)

    def close(self) -> None:
        self.port.close()


@pytest.fixture
def sim():
    mcu = SimulatedMcu(retransmit_s=0.1).start()
    yield mcu
    mcu.stop()
    assert not os.path.lexists(mcu.path) and mcu.counts["errors"] == 0


@pytest.fixture
def client(sim):
    c = Client(sim.path)
    yield c
    c.close()


def test_answers_polls_with_response_flag(sim, client):
    sim.set_readings(amp=AmpState.PROTECT, mains_v=None, on_battery=True)
    client.send(Poll(MessageType.HELLO))
    hello = client.wait_for(lambda f: f.type == MessageType.HELLO, "HELLO")
    assert hello.flags == FLAG_RESPONSE and hello.message == sim.hello
    client.send(Poll(MessageType.TELEMETRY))
    tm = client.wait_for(lambda f: f.type == MessageType.TELEMETRY, "TELEMETRY").message
    assert tm.amp == AmpState.PROTECT and tm.mains_v is None and tm.on_battery
    assert not tm.mains_present and tm.audio_rms_dbfs == -18.0


def test_acks_time_sync(sim, client):
    seq = client.send(TimeSync(1_790_000_000_000, 420))
    ack = client.wait_for(lambda f: isinstance(f.message, Ack), "ACK")
    assert ack.message == Ack(seq, MessageType.TIME_SYNC)
    assert sim.last_time_sync.unix_ms == 1_790_000_000_000


def test_nacks_unknown_types_and_bad_poll(client):
    seq = client.send(Unknown(0x7E, b"\x01"))
    nack = client.wait_for(lambda f: isinstance(f.message, Nack), "NACK")
    assert nack.message == Nack(seq, 0x7E, NackReason.UNKNOWN_TYPE)
    seq = client.send(Poll(0x42))
    client.wait_for(lambda f: f.message == Nack(seq, MessageType.POLL, NackReason.BAD_VALUE),
                    "NACK of a poll for a type that cannot be polled")  # fmt: skip


def test_ignores_frames_for_another_address(sim, client):
    client.send(Poll(MessageType.HELLO), address=2)
    wait_until(lambda: sim.counts["frames_in"] == 1, 10, what="frame received")
    client.send(Poll(MessageType.HELLO))
    client.wait_for(lambda f: f.type == MessageType.HELLO, "HELLO for our address")
    assert len(client.frames) == 1


def test_events_are_retransmitted_with_the_same_seq_until_acked(sim, client):
    seq = sim.emit_event(EventCode.DOOR_OPEN)
    client.wait_for(lambda f: sum(g.seq == seq for g in client.frames) >= 3, "3 transmissions")
    copies = [f for f in client.frames if f.seq == seq]
    assert all(f.flags == FLAG_ACK_REQUESTED and f.message.code == 6 for f in copies)
    client.send(Ack(seq, MessageType.EVENT))
    wait_until(lambda: sim.unacked() == [], 10, what="event acknowledged")


def test_playback_frames(sim, client):
    seq = sim.start_program(3, 2, 0b1000)
    pb = client.wait_for(lambda f: f.seq == seq, "PLAYBACK").message
    assert (pb.started, pb.source, pb.priority, pb.cluster_ids) == (True, 3, 2, (3,))
    seq = sim.stop_program(3, 2, 0b1000)
    assert client.wait_for(lambda f: f.seq == seq, "PLAYBACK stop").message.started is False


def test_noise_puts_garbage_between_frames(sim, client):
    sim.noise(True)
    client.send(Poll(MessageType.TELEMETRY))
    client.wait_for(lambda f: f.type == MessageType.TELEMETRY, "TELEMETRY through noise")
    assert client.decoder.stats.discarded_bytes >= 18


def test_vanish_and_reappear_at_the_same_path(sim, client):
    sim.vanish()
    assert not os.path.lexists(sim.path)
    with pytest.raises(serial.SerialException):
        wait_until(lambda: client.port.read(1) and False, 10, what="the port to fail")
    sim.reappear()
    assert os.path.exists(sim.path)
    client.close()
    again = Client(sim.path)
    try:
        again.send(Poll(MessageType.HELLO))
        again.wait_for(lambda f: f.type == MessageType.HELLO, "HELLO on the new pty")
    finally:
        again.close()


def test_mute_stops_answering(sim, client):
    sim.mute(True)
    client.send(Poll(MessageType.HELLO))
    wait_until(lambda: sim.counts["frames_in"] == 1, 10, what="poll received")
    sim.mute(False)
    client.send(Poll(MessageType.HELLO))
    client.wait_for(lambda f: f.type == MessageType.HELLO, "HELLO after unmute")
    assert len([f for f in client.frames if f.type == MessageType.HELLO]) == 1


def test_broadcast_time_sync_is_applied_but_not_answered(sim, client):
    client.send(TimeSync(1_790_000_000_000, 420), address=0xFFFF)
    wait_until(lambda: sim.last_time_sync is not None, 10, what="broadcast TIME_SYNC applied")
    client.send(Poll(MessageType.HELLO))
    client.wait_for(lambda f: f.type == MessageType.HELLO, "HELLO")
    assert [f.type for f in client.frames] == [MessageType.HELLO]  # no ACK of the broadcast


def test_retried_time_sync_is_acked_again_but_applied_once(sim, client):
    client.port.write(encode_frame(Frame(1, 500, TimeSync(1_790_000_000_000, 420))))
    client.wait_for(lambda f: isinstance(f.message, Ack), "first ACK")
    client.port.write(encode_frame(Frame(1, 500, TimeSync(1_790_000_000_000, 420))))
    client.wait_for(lambda f: len(client.frames) == 2, "ACK of the retry")
    assert client.frames[0].message == client.frames[1].message == Ack(500, 0x11)
    assert sim.counts["time_syncs"] == 1


def test_rs485_mode_answers_polls_with_queued_frames(tmp_path):
    bus = SimulatedMcu(rs485=True, path=tmp_path / "ttyBUS").start()
    c = Client(bus.path)
    try:
        seq = bus.emit_event(EventCode.DOOR_OPEN)
        c.send(Poll(MessageType.TELEMETRY))
        queued = c.wait_for(lambda f: f.seq == seq, "queued EVENT as the poll's answer")
        assert queued.flags == FLAG_RESPONSE | FLAG_ACK_REQUESTED
        c.send(Ack(seq, MessageType.EVENT))
        wait_until(lambda: bus.unacked() == [], 10, what="ACK taken")
        c.send(Poll(MessageType.TELEMETRY))
        c.wait_for(lambda f: f.type == MessageType.TELEMETRY, "TELEMETRY once the queue is empty")
        assert bus.counts["retransmits"] == 0  # RS-485 devices only talk when polled
    finally:
        c.close()
        bus.stop()
