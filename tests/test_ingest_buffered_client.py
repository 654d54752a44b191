"""BufferedClient on the real broker: every message arrives once, whole and in order, whatever
its size relative to the 64 KiB read buffer (packets straddle buffer ends), at QoS 0 and 1;
a fast stream takes fewer socket reads than messages."""

from __future__ import annotations

import random
import threading

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from collector.ingest.buffered_client import CHUNK, BufferedClient
from tests.servers import wait_until


def payloads(n: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    sizes = [
        rng.choice([0, 1, 127, 128, 300, 16383, 16384, CHUNK - 5, CHUNK + 7]) for _ in range(n)
    ]
    return [bytes([i % 251]) * s + i.to_bytes(4, "big") for i, s in enumerate(sizes)]


@pytest.mark.parametrize("qos", [0, 1])
def test_every_message_once_whole_and_in_order(mosquitto, qos):
    sent = payloads(400, seed=qos) + [b"x" * 200] * 3000  # big ones, then a flood of small
    got: list[bytes] = []
    subscribed = threading.Event()
    reads = [0]
    sub = BufferedClient(CallbackAPIVersion.VERSION2, client_id=f"buffered-{qos}")
    real_recv = paho.Client._sock_recv

    def counting_recv(self, bufsize):
        reads[0] += 1
        return real_recv(self, bufsize)

    sub.on_message = lambda c, u, m: got.append(m.payload)
    sub.on_subscribe = lambda *a: subscribed.set()
    sub.on_connect = lambda c, *a: c.subscribe("bench/#", qos=1)
    paho.Client._sock_recv = counting_recv  # BufferedClient's super() call lands here
    pub = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{qos}")
    try:
        sub.connect("127.0.0.1", mosquitto.port)
        sub.loop_start()
        assert subscribed.wait(10)
        pub.connect("127.0.0.1", mosquitto.port)
        pub.loop_start()
        for p in sent:
            pub.publish("bench/t", p, qos=qos)
        wait_until(lambda: len(got) >= len(sent), 60, what=f"{len(sent)} messages")
    finally:
        paho.Client._sock_recv = real_recv
        for c in (pub, sub):
            c.disconnect()
            c.loop_stop()
    assert got == sent
    if qos == 0:  # a fast stream: batched socket reads, not 3 or more per message as in paho
        assert reads[0] < len(sent)


def test_shared_table_properties_decode_like_paho():
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    from collector.ingest.buffered_client import SharedTableProperties

    sent = Properties(PacketTypes.PUBLISH)
    sent.ContentType = "application/json"
    sent.MessageExpiryInterval = 3600
    sent.UserProperty = [("station", "cb-01267"), ("k", "v")]
    raw = sent.pack()
    theirs, ours = Properties(PacketTypes.PUBLISH), SharedTableProperties(PacketTypes.PUBLISH)
    assert theirs.unpack(raw)[1] == ours.unpack(raw)[1] == len(raw)
    assert ours.json() == theirs.json() == sent.json()
    assert ours.names is SharedTableProperties(PacketTypes.CONNACK).names  # shared, not rebuilt


def test_v5_properties_arrive_through_the_broker(mosquitto):
    from paho.mqtt.enums import MQTTProtocolVersion
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    got: list[paho.MQTTMessage] = []
    subscribed = threading.Event()
    v5 = MQTTProtocolVersion.MQTTv5
    sub = BufferedClient(CallbackAPIVersion.VERSION2, client_id="props-sub", protocol=v5)
    sub.on_message = lambda c, u, m: got.append(m)
    sub.on_subscribe = lambda *a: subscribed.set()
    sub.on_connect = lambda c, *a: c.subscribe("props/#", qos=1)
    pub = paho.Client(CallbackAPIVersion.VERSION2, client_id="props-pub", protocol=v5)
    props = Properties(PacketTypes.PUBLISH)
    props.ContentType = "application/json"
    props.UserProperty = [("station", "cb-01267")]
    try:
        sub.connect("127.0.0.1", mosquitto.port)
        sub.loop_start()
        assert subscribed.wait(10)
        pub.connect("127.0.0.1", mosquitto.port)
        pub.loop_start()
        pub.publish("props/t", b"{}", qos=1, properties=props)
        wait_until(lambda: got, 10, what="the message")
    finally:
        for c in (pub, sub):
            c.disconnect()
            c.loop_stop()
    assert got[0].properties.ContentType == "application/json"
    assert got[0].properties.UserProperty == [("station", "cb-01267")]
