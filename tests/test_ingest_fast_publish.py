"""BufferedClient's lean PUBLISH path gives the callback what paho's own path gives on_message
(any topic, payload, packet id, QoS; malformed and unusual packets go to paho), and through
the real broker every message arrives once, in order, on the lean path or paho's."""

from __future__ import annotations

import struct
import threading

import paho.mqtt.client as paho
from hypothesis import given, settings
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from collector.ingest.buffered_client import BufferedClient
from tests.servers import wait_until

V5 = MQTTProtocolVersion.MQTTv5


def publish_packet(topic: bytes, payload: bytes, qos: int, mid: int, props: bytes) -> bytes:
    """A PUBLISH after its fixed header (MQTT 5.0, 3.3.2)."""
    return (
        struct.pack("!H", len(topic))
        + topic
        + (struct.pack("!H", mid) if qos else b"")
        + props
        + payload
    )


def handle(packet: bytes, qos: int, fast: bool) -> tuple[list, list, object]:
    """Run one PUBLISH through _handle_publish; (lean-path calls, on_message calls, rc)."""
    client = BufferedClient(CallbackAPIVersion.VERSION2, protocol=V5, manual_ack=True)
    lean: list[tuple] = []
    slow: list[tuple] = []
    client.on_message = lambda c, u, m: slow.append((m.topic, m.payload, m.mid, m.qos))
    if fast:
        client.on_fast_publish = lambda *a: lean.append(a)
    client._in_packet = {"command": 0x30 | qos << 1, "packet": packet}
    try:
        rc = client._handle_publish()
    except Exception as err:  # paho raises on malformed packets: compared by type
        rc = type(err)
    return lean, slow, rc


PROPS = Properties(PacketTypes.PUBLISH)
PROPS.UserProperty = [("k", "v")]
TOPICS = st.one_of(
    st.text(alphabet="ab/+é1", max_size=10).map(str.encode),
    st.just(b"\xff\xfe"),
)


@settings(max_examples=300, deadline=None)
@given(
    topic=TOPICS,
    payload=st.binary(max_size=40),
    qos=st.sampled_from([0, 1]),
    mid=st.integers(1, 65535),
    props=st.sampled_from([b"\x00", PROPS.pack()]),
    cut=st.one_of(st.none(), st.integers(0, 8)),
)
def test_lean_path_delivers_what_paho_delivers(topic, payload, qos, mid, props, cut):
    packet = publish_packet(topic, payload, qos, mid, props)
    if cut is not None:
        packet = packet[:cut]  # truncated: malformed
    lean, slow, rc = handle(packet, qos, fast=True)
    _, reference, ref_rc = handle(packet, qos, fast=False)
    assert lean + slow == reference
    assert rc == ref_rc
    if lean:  # the common case really takes the lean path
        assert props == b"\x00" and topic and slow == []


def test_plain_telemetry_publish_takes_the_lean_path():
    packet = publish_packet(b"loaxa/v1/p/01273/st-1/telemetry", b'{"v":1}', 1, 7, b"\x00")
    lean, slow, rc = handle(packet, 1, fast=True)
    assert lean == [("loaxa/v1/p/01273/st-1/telemetry", b'{"v":1}', 7, 1)] and slow == []
    assert rc == paho.MQTT_ERR_SUCCESS


def test_lean_and_paho_paths_through_the_broker(mosquitto):
    got: list[tuple[str, bytes]] = []
    subscribed = threading.Event()
    sub = BufferedClient(
        CallbackAPIVersion.VERSION2, client_id="lean-sub", protocol=V5, manual_ack=True
    )
    sub.on_fast_publish = lambda topic, payload, mid, qos: got.append((topic, payload))
    sub.on_message = lambda c, u, m: got.append((m.topic, m.payload))
    sub.on_subscribe = lambda *a: subscribed.set()
    sub.on_connect = lambda c, *a: c.subscribe("lean/#", qos=1)
    pub = paho.Client(CallbackAPIVersion.VERSION2, client_id="lean-pub", protocol=V5)
    sent = [(f"lean/{i % 7}", b"%d" % i, PROPS if i % 5 == 0 else None) for i in range(2000)]
    try:
        sub.connect("127.0.0.1", mosquitto.port)
        sub.loop_start()
        assert subscribed.wait(10)
        pub.connect("127.0.0.1", mosquitto.port)
        pub.loop_start()
        for topic, payload, props in sent:
            pub.publish(topic, payload, qos=0, properties=props)
        wait_until(lambda: len(got) >= len(sent), 60, what=f"{len(sent)} messages")
    finally:
        for c in (pub, sub):
            c.disconnect()
            c.loop_stop()
    assert got == [(t, p) for t, p, _ in sent]
