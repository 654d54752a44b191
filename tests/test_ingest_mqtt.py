"""collector.ingest.mqtt against a real Mosquitto: validation, batching, ack-after-store."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from collector.ingest.config import MqttConfig
from collector.ingest.mqtt import MqttIngest
from collector.ingest.pipeline import Pipeline
from collector.ingest.stats import IngestStats
from collector.ingest.validate import Accepted, Limits, RejectReason
from loaxa.payloads import Status, Telemetry, to_json
from loaxa.topics import Kind, station_topic
from tests.servers import wait_until


@dataclass(frozen=True)
class _Station:
    commune: str


@dataclass(frozen=True)
class _Province:
    slug: str = "cao-bang"


@dataclass
class _Inventory:
    province: _Province = field(default_factory=_Province)
    stations: dict = field(default_factory=lambda: {"cb-01267": _Station("01267")})


class ListSink:
    """Stores in memory; ``fail`` makes append raise (a full disk, say)."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.stored: list[Accepted] = []
        self.lock = threading.Lock()

    def append(self, messages) -> None:
        if self.fail:
            raise OSError("disk full (test)")
        with self.lock:
            self.stored.extend(messages)

    def seqs(self) -> list[int]:
        with self.lock:
            return [m.payload.seq for m in self.stored]


TOPIC = station_topic("cao-bang", "01267", "cb-01267", Kind.TELEMETRY)


def good(seq: int) -> bytes:
    now = int(time.time() * 1000)
    return to_json(Telemetry(station="cb-01267", session=1, seq=seq, ts=now, agent_uptime_s=seq))


def publish(broker_port: int, messages: list[tuple[str, bytes]]) -> None:
    pub = paho.Client(CallbackAPIVersion.VERSION2, client_id="test-publisher")
    pub.connect("127.0.0.1", broker_port)
    pub.loop_start()
    try:
        infos = [pub.publish(topic, payload, qos=1) for topic, payload in messages]
        for info in infos:
            info.wait_for_publish(10)
    finally:
        pub.disconnect()
        pub.loop_stop()


def make_ingest(port: int, sink: ListSink, stop: threading.Event | None = None, **kw) -> MqttIngest:
    kw.setdefault("client_id", "collector-test")  # a test of its own: a session of its own
    config = MqttConfig(port=port, **kw)
    stats = IngestStats(log_every_s=0)
    pipeline = Pipeline(_Inventory, Limits(), sink, stats, stop=stop, retry_s=0.05)
    return MqttIngest(config, pipeline)


@pytest.fixture
def ingest_factory():
    started: list[MqttIngest] = []

    def factory(port: int, sink: ListSink, **kw) -> MqttIngest:
        ingest = make_ingest(port, sink, **kw)
        ingest.start()
        started.append(ingest)
        wait_until(lambda: ingest.connected, 10, what="collector connected")
        return ingest

    yield factory
    for ingest in started:
        ingest.stop()


def test_good_and_bad_messages(mosquitto, ingest_factory):
    sink = ListSink()
    ingest = ingest_factory(mosquitto.port, sink)
    wrong_commune = station_topic("cao-bang", "01273", "cb-01267", Kind.TELEMETRY)
    messages = [
        (TOPIC, good(1)),
        (TOPIC, b"{not json"),
        (TOPIC, good(2)),
        (TOPIC, b"x" * 20_000),
        (wrong_commune, good(3)),
        (TOPIC, good(4)),
    ]
    publish(mosquitto.port, messages)
    wait_until(lambda: ingest.acked == len(messages), 10, what="all messages processed")
    assert sink.seqs() == [1, 2, 4]
    _, rejected, _ = ingest._pipeline.stats.snapshot()
    assert rejected == {
        RejectReason.MALFORMED: 1,
        RejectReason.OVERSIZE: 1,
        RejectReason.IMPERSONATION: 1,
    }


def test_shared_subscription_receives(mosquitto, ingest_factory):
    sink = ListSink()
    ingest_factory(mosquitto.port, sink, shared_group="collectors")
    publish(mosquitto.port, [(TOPIC, good(s)) for s in range(5)])
    wait_until(lambda: len(sink.seqs()) == 5, 10, what="messages via $share")


def test_unstored_messages_are_redelivered_to_the_next_session(mosquitto, ingest_factory):
    failing = ListSink(fail=True)
    stop = threading.Event()
    first = make_ingest(mosquitto.port, failing, stop=stop)
    first.start()
    wait_until(lambda: first.connected, 10, what="first collector connected")
    publish(mosquitto.port, [(TOPIC, good(s)) for s in range(20)])
    wait_until(lambda: first.received == 20, 10, what="first collector received all")
    wait_until(lambda: first._pipeline.sink_failures >= 2, 10, what="sink failures")
    stop.set()  # the daemon stops while storage is failing: nothing may be acked
    first.stop()
    assert first.acked == 0

    sink = ListSink()
    ingest_factory(mosquitto.port, sink)  # same client id: resumes the session
    wait_until(lambda: len(set(sink.seqs())) == 20, 10, what="redelivered messages")
    assert sorted(set(sink.seqs())) == list(range(20))


def test_messages_published_while_away_are_queued_by_the_broker(mosquitto, ingest_factory):
    sink = ListSink()
    first = ingest_factory(mosquitto.port, sink)
    first.stop()  # a clean stop keeps the persistent session
    publish(mosquitto.port, [(TOPIC, good(s)) for s in range(10)])
    ingest_factory(mosquitto.port, sink)
    wait_until(lambda: len(sink.seqs()) == 10, 10, what="queued messages")


def test_stop_under_a_stream_finishes_and_loses_nothing(mosquitto, ingest_factory):
    sink = ListSink()
    first = ingest_factory(mosquitto.port, sink)
    n = 3000
    sender = threading.Thread(
        target=publish, args=(mosquitto.port, [(TOPIC, good(s)) for s in range(n)])
    )
    sender.start()
    wait_until(lambda: len(sink.seqs()) > 100, 10, what="stream under way")
    first.stop()  # must not wait for the stream to end
    assert not first._worker.is_alive()
    sender.join(30)
    ingest_factory(mosquitto.port, sink)
    wait_until(lambda: set(sink.seqs()) == set(range(n)), 30, what="the rest redelivered")


def test_retained_status_only_on_a_new_subscription(mosquitto, ingest_factory):
    status_topic = station_topic("cao-bang", "01267", "cb-01267", Kind.STATUS)
    now = int(time.time() * 1000)
    status = to_json(Status(station="cb-01267", session=4, seq=0, ts=now, state="online"))
    pub = paho.Client(CallbackAPIVersion.VERSION2, client_id="agent-status")
    pub.connect("127.0.0.1", mosquitto.port)
    pub.loop_start()
    pub.publish(status_topic, status, qos=1, retain=True).wait_for_publish(10)
    pub.disconnect()
    pub.loop_stop()

    sink = ListSink()
    first = ingest_factory(mosquitto.port, sink)
    wait_until(lambda: len(sink.seqs()) == 1, 10, what="retained status")
    first.stop()
    second = ingest_factory(mosquitto.port, sink)  # resumes the session, re-subscribes
    publish(mosquitto.port, [(TOPIC, good(1))])
    wait_until(lambda: second.acked >= 1, 10, what="next message")
    assert [type(m.payload).__name__ for m in sink.stored] == ["Status", "Telemetry"]


@pytest.mark.slow
def test_throughput_qos1(mosquitto, ingest_factory):
    """Drain rate of a backlog the broker queued while the collector was away (ingest only)."""
    sink = ListSink()
    ingest_factory(mosquitto.port, sink).stop()
    n = 30_000
    publish(mosquitto.port, [(TOPIC, good(s)) for s in range(n)])
    start = time.monotonic()
    ingest = ingest_factory(mosquitto.port, sink)
    wait_until(lambda: ingest.acked == n, 120, what="all messages acked")
    rate = n / (time.monotonic() - start)
    print(f"ingested {n} QoS 1 messages at {rate:.0f} msg/s")
    assert sorted(sink.seqs()) == list(range(n))


class BlockingSink(ListSink):
    """Encodes in ``prepare`` (like StorageSink) and blocks in ``append`` until released."""

    def __init__(self) -> None:
        super().__init__()
        self.prepared: list[list[int]] = []
        self.entered = threading.Event()
        self.release = threading.Event()

    def prepare(self, messages) -> list[int]:
        seqs = [m.payload.seq for m in messages]
        self.prepared.append(seqs)
        return seqs

    def append(self, messages, encoded=None) -> None:
        assert encoded == [m.payload.seq for m in messages]  # what prepare made for them
        self.entered.set()
        assert self.release.wait(30)
        super().append(messages)


def test_next_batch_prepared_during_a_store_and_acks_wait_for_it(mosquitto, ingest_factory):
    sink = BlockingSink()
    ingest = ingest_factory(mosquitto.port, sink, client_id="collector-test-overlap")
    publish(mosquitto.port, [(TOPIC, good(0))])
    wait_until(sink.entered.is_set, 10, what="first batch in the sink's append")
    publish(mosquitto.port, [(TOPIC, good(s)) for s in range(1, 6)])
    # Batches split as messages arrive; the look-ahead is bounded (one waiting for the commit
    # thread, one in the worker's hands), so at least the next batch is prepared meanwhile.
    wait_until(lambda: len(sink.prepared) >= 2, 10, what="next batch prepared")
    assert ingest.acked == 0  # nothing is acknowledged before its append returned
    sink.release.set()
    wait_until(lambda: ingest.acked == 6, 10, what="all acknowledged after storing")
    assert sink.seqs() == list(range(6))


def test_batched_pubacks_reach_the_broker(mosquitto, ingest_factory):
    """A window of 5 unacknowledged messages: 300 arrive only if the batched PUBACKs work, and
    the next session gets nothing again (all were acknowledged)."""
    sink = ListSink()
    first = ingest_factory(mosquitto.port, sink, receive_maximum=5, client_id="collector-acks")
    publish(mosquitto.port, [(TOPIC, good(s)) for s in range(300)])
    wait_until(lambda: first.acked == 300, 30, what="300 messages through a window of 5")
    first.stop()
    again = ListSink()
    ingest_factory(mosquitto.port, again, receive_maximum=5, client_id="collector-acks")
    publish(mosquitto.port, [(TOPIC, good(300))])
    wait_until(lambda: again.seqs() == [300], 10, what="only the new message")
    assert sink.seqs() == list(range(300))
