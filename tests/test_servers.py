"""The real servers the other tests rely on start, answer and stop."""

from __future__ import annotations

import paho.mqtt.client as mqtt

from tests.servers import wait_until


def test_mosquitto_delivers_a_retained_message(mosquitto):
    received = []
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    pub.connect("127.0.0.1", mosquitto.port)
    pub.loop_start()
    pub.publish("t/x", b"hello", qos=1, retain=True).wait_for_publish(5)
    pub.loop_stop()
    pub.disconnect()

    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    sub.on_message = lambda c, u, m: received.append(m.payload)
    sub.connect("127.0.0.1", mosquitto.port)
    sub.subscribe("t/#", qos=1)
    sub.loop_start()
    wait_until(lambda: received, 10, what="retained message")
    sub.loop_stop()
    sub.disconnect()
    assert received == [b"hello"]


def test_influxdb_v1_write_and_query(influxdb):
    import urllib.request

    influxdb.create_database("t")
    req = urllib.request.Request(
        f"{influxdb.url}/write?db=t&precision=ms", data=b"m,s=a v=1.5 1700000000000", method="POST"
    )
    with urllib.request.urlopen(req) as r:
        assert r.status == 204
    assert influxdb.rows("SELECT v FROM m", "t") == [{"time": 1700000000000, "v": 1.5}]
