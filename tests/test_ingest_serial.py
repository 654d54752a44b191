"""collector.ingest.serial_gateway on a real pty, with a multi-drop peer: several controllers
sharing one line, each answering POLLs to its own address (firmware_protocol v1)."""

from __future__ import annotations

import os
import threading
import tty
from dataclasses import dataclass, field

import pytest

import firmware_protocol as fp
from collector.ingest.config import SerialGatewayConfig
from collector.ingest.pipeline import Pipeline
from collector.ingest.serial_gateway import SerialGateway
from collector.ingest.stats import IngestStats
from collector.ingest.validate import Limits
from loaxa.payloads import Broadcast, Event, Status, Telemetry
from tests.servers import wait_until
from tests.test_ingest_mqtt import ListSink


@dataclass(frozen=True)
class _Station:
    commune: str


@dataclass(frozen=True)
class _Province:
    slug: str = "cao-bang"


@dataclass
class _Inventory:
    province: _Province = field(default_factory=_Province)
    stations: dict = field(
        default_factory=lambda: {
            "cb-a": _Station("01267"),
            "cb-b": _Station("01273"),
            "cb-silent": _Station("01273"),
        }
    )


LINE = {3: ("cb-a", "01267"), 7: ("cb-b", "01273"), 9: ("cb-silent", "01273")}


class MultiDropPeer:
    """RS-485 controllers at ``addresses`` on the far end of a pty (SPEC FP-LINK-3/4): silent
    unless polled; a POLL is answered by the oldest queued EVENT/PLAYBACK (RESPONSE |
    ACK_REQUESTED, original seq when resent) until ACKed, else by the requested message."""

    def __init__(self, fd: int, addresses: list[int]) -> None:
        self.fd = fd
        self.addresses = set(addresses)
        self.pending: dict[int, list[fp.Frame]] = {a: [] for a in addresses}
        self.acked: list[tuple[int, int]] = []
        self.lose_acks = 0  # ACKs to ignore, as if lost on the line: the frame is resent
        self.muted = threading.Event()
        self.stop = threading.Event()
        self.seq = {a: 100 for a in addresses}
        self.uptime = 0
        self.polls_seen: list[tuple[int, int]] = []  # (address, seq) of every POLL on the line
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _next(self, address: int) -> int:
        self.seq[address] += 1
        return self.seq[address]

    def queue_event(self, address: int, message: fp.Message) -> None:
        flags = fp.FLAG_RESPONSE | fp.FLAG_ACK_REQUESTED
        self.pending[address].append(fp.Frame(address, self._next(address), message, flags))

    def send_raw(self, data: bytes) -> None:
        os.write(self.fd, data)

    def _run(self) -> None:
        decoder = fp.StreamDecoder()
        while not self.stop.is_set():
            try:
                chunk = os.read(self.fd, 512)
            except OSError:
                return
            for frame in decoder.feed(chunk):
                self._answer(frame)

    def _answer(self, frame: fp.Frame) -> None:
        if isinstance(frame.message, fp.Poll):
            self.polls_seen.append((frame.address, frame.seq))
        if frame.address not in self.addresses or self.muted.is_set():
            return
        msg = frame.message
        if isinstance(msg, fp.Ack):
            if self.lose_acks > 0:
                self.lose_acks -= 1
                return
            self.acked.append((frame.address, msg.acked_seq))
            queue = self.pending[frame.address]
            self.pending[frame.address] = [f for f in queue if f.seq != msg.acked_seq]
            return
        if not isinstance(msg, fp.Poll):
            return
        if self.pending[frame.address]:
            os.write(self.fd, fp.encode_frame(self.pending[frame.address][0]))
            return
        self.uptime += 1
        if msg.requested_type == fp.MessageType.HELLO:
            reply: fp.Message = fp.Hello(device_id=0xC0DE0000 + frame.address, fw_major=1)
        else:
            reply = fp.Telemetry(uptime_s=self.uptime, amp_state=1, audio_rms=-1200, mains=2205)
        seq = self._next(frame.address)
        os.write(self.fd, fp.encode_frame(fp.Frame(frame.address, seq, reply, fp.FLAG_RESPONSE)))


@pytest.fixture
def line():
    master, slave = os.openpty()
    tty.setraw(slave)
    peer = MultiDropPeer(master, [3, 7])  # 9 is in the inventory but never answers
    peer.thread.start()
    yield peer, os.ttyname(slave)
    peer.stop.set()
    os.close(slave)
    os.close(master)
    peer.thread.join(5)


@pytest.fixture
def gateway_factory():
    started: list[SerialGateway] = []

    def factory(url: str, sink: ListSink, states: list, **kw) -> SerialGateway:
        config = SerialGatewayConfig(
            id="gw-1", url=url, poll_interval_s=0.3, response_timeout_s=0.2, **kw
        )
        pipeline = Pipeline(_Inventory, Limits(), sink, IngestStats(log_every_s=0), retry_s=0.05)
        gw = SerialGateway(
            config,
            "cao-bang",
            lambda: dict(LINE),
            pipeline,
            on_state=lambda gid, up, ts: states.append((gid, up)),
        )
        gw.start()
        started.append(gw)
        return gw

    yield factory
    for gw in started:
        gw.stop()


def of_station(sink: ListSink, station: str, model: type) -> list:
    with sink.lock:
        return [
            m.payload for m in sink.stored if m.station == station and isinstance(m.payload, model)
        ]


def test_polls_every_station_on_the_line(line, gateway_factory):
    _peer, url = line
    sink, states = ListSink(), []
    gw = gateway_factory(url, sink, states)
    wait_until(
        lambda: (
            len(of_station(sink, "cb-a", Telemetry)) >= 2
            and len(of_station(sink, "cb-b", Telemetry)) >= 2
        ),
        10,
        what="telemetry of a and b",
    )
    for station in ("cb-a", "cb-b"):
        (status,) = of_station(sink, station, Status)
        assert status.state == "online"
        assert status.firmware == "1.0.0"
        tele = of_station(sink, station, Telemetry)
        assert tele[0].power.mains_v == 220.5
        assert tele[0].audio.rms_dbfs == -12.0
        seqs = [m.payload.seq for m in sink.stored if m.station == station]
        assert seqs == sorted(seqs)  # the gateway's synthesised sequence
        assert len(set(seqs)) == len(seqs)
    assert of_station(sink, "cb-silent", Telemetry) == []
    assert gw.counts["timeouts"] > 0
    assert states == [("gw-1", True)]


def test_events_acked_and_retries_not_stored_twice(line, gateway_factory):
    peer, url = line
    sink, states = ListSink(), []
    peer.queue_event(3, fp.Event(code=1, uptime_s=5))  # power_lost
    peer.queue_event(7, fp.Playback(action=1, source=1, priority=2, cluster_mask=0b101))
    peer.lose_acks = 2  # both frames are sent again with the same seq
    gw = gateway_factory(url, sink, states)
    wait_until(lambda: len(peer.acked) == 2, 10, what="both frames acknowledged")
    wait_until(lambda: of_station(sink, "cb-b", Broadcast), 10, what="broadcast stored")
    assert gw.counts["duplicates"] == 2
    (event,) = of_station(sink, "cb-a", Event)
    assert event.code == "power_lost"
    (start,) = of_station(sink, "cb-b", Broadcast)
    assert (start.action, start.priority, start.clusters) == ("start", "emergency", [0, 2])


def test_dead_line_reported_then_recovered(line, gateway_factory):
    peer, url = line
    sink, states = ListSink(), []
    gateway_factory(url, sink, states, dead_after_s=1.0)
    wait_until(lambda: states == [("gw-1", True)], 10, what="gateway up")
    peer.muted.set()
    wait_until(lambda: ("gw-1", False) in states, 10, what="gateway reported down")
    peer.muted.clear()
    wait_until(
        lambda: states == [("gw-1", True), ("gw-1", False), ("gw-1", True)],
        10,
        what="gateway up again",
    )


def test_garbage_and_strangers_do_not_stop_it(line, gateway_factory):
    peer, url = line
    sink, states = ListSink(), []
    gw = gateway_factory(url, sink, states)
    wait_until(lambda: states, 10, what="line open")  # pyserial flushes input when it opens
    stranger = fp.Frame(42, 1, fp.Event(code=3), 0)
    peer.send_raw(b"\x01\x02garbage\xff\x00" + fp.encode_frame(stranger))
    wait_until(lambda: gw.counts["unknown_address"] >= 1, 10, what="stranger counted")
    n = len(of_station(sink, "cb-a", Telemetry))
    wait_until(lambda: len(of_station(sink, "cb-a", Telemetry)) > n, 10, what="polling goes on")
    assert gw.decoder_stats.discarded_bytes > 0
    assert of_station(sink, "cb-a", Event) == []


def test_missing_port_is_reported_down(tmp_path, gateway_factory):
    sink, states = ListSink(), []
    gw = gateway_factory(
        str(tmp_path / "no-such-tty"), sink, states, dead_after_s=0.2, reopen_after_s=0.1
    )
    wait_until(lambda: states == [("gw-1", False)], 10, what="gateway down")
    assert gw.counts["open_failures"] >= 1


def test_silent_station_gets_four_transmissions_of_one_frame(line, gateway_factory):
    peer, url = line
    gw = gateway_factory(url, ListSink(), [])
    wait_until(lambda: gw.counts["timeouts"] >= 4, 10, what="silent station retried")
    to_silent = [seq for address, seq in list(peer.polls_seen) if address == 9]
    assert to_silent[:4] == [to_silent[0]] * 4  # FP-TIME-2: retries repeat the seq
    assert len(to_silent) < 5 or to_silent[4] != to_silent[0]  # then the next cycle moves on


def test_reboot_detected_from_uptime(line, gateway_factory):
    peer, url = line
    sink = ListSink()
    gateway_factory(url, sink, [])
    wait_until(lambda: len(of_station(sink, "cb-a", Telemetry)) >= 2, 10, what="telemetry")
    peer.uptime = 0  # both devices "rebooted": uptime goes backwards
    wait_until(lambda: len(of_station(sink, "cb-a", Status)) == 2, 10, what="HELLO after reboot")


def test_event_acked_only_once_stored(line, gateway_factory):
    peer, url = line
    sink = ListSink(fail=True)  # storage failing: nothing may be acknowledged to the device
    peer.queue_event(3, fp.Event(code=3, uptime_s=9))  # amp_fault
    gw = gateway_factory(url, sink, [])
    wait_until(lambda: gw._pipeline.sink_failures >= 3, 10, what="storage failing")
    assert peer.acked == []
    sink.fail = False
    wait_until(lambda: peer.acked, 10, what="ACK after storage recovered")
    (event,) = of_station(sink, "cb-a", Event)
    assert event.code == "amp_fault"
