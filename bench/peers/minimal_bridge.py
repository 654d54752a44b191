"""The minimal Python bridge users would write (benchmark peer (c)): paho-mqtt + influxdb-client.

    python minimal_bridge.py MQTT_PORT INFLUX_URL DB CLIENT_ID

on_message: ``json.loads``, one influxdb-client ``Point`` for the reading and one per cluster;
a thread writes batches of 5000 (or every 1 s) to InfluxDB 1.x ``/write`` (InfluxDB 1.6 has no
``/api/v2/write``, so the points' line protocol is POSTed with urllib3, influxdb-client's own
HTTP library). No spool, no validation, no health: the floor a real collector is compared with.
"""

from __future__ import annotations

import json
import sys
import threading

import paho.mqtt.client as paho
import urllib3
from influxdb_client import Point, WritePrecision
from paho.mqtt.enums import CallbackAPIVersion

FILTER = "loaxa/v1/+/+/+/+"
BATCH = 5000


def points(topic: str, payload: bytes) -> list[Point]:
    d = json.loads(payload)
    _, _, province, commune, station, _ = topic.split("/")
    a, pw = d.get("audio", {}), d.get("power", {})
    p = (
        Point("telemetry")
        .tag("province", province)
        .tag("commune", commune)
        .tag("station", station)
        .field("seq", d["seq"])
        .field("session", d["session"])
        .field("agent_uptime_s", d["agent_uptime_s"])
        .field("amp", d.get("amp", "unknown"))
        .field("on_battery", pw.get("on_battery", False))
        .time(d["ts"], WritePrecision.MS)
    )
    for key, value in (
        ("audio_rms_dbfs", a.get("rms_dbfs")),
        ("mains_v", pw.get("mains_v")),
        ("battery_v", pw.get("battery_v")),
        ("temp_c", d.get("temp_c")),
    ):
        if value is not None:
            p.field(key, float(value))
    out = [p]
    for c in d.get("clusters", []):
        cp = (
            Point("cluster")
            .tag("province", province)
            .tag("commune", commune)
            .tag("station", station)
            .tag("cluster", str(c["id"]))
            .field("relay_on", c["relay_on"])
            .time(d["ts"], WritePrecision.MS)
        )
        out.append(cp)
    return out


def main() -> None:
    port, url, db, client_id = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    http = urllib3.PoolManager()
    pending: list[str] = []
    lock, wake = threading.Lock(), threading.Event()

    def writer() -> None:
        while True:
            wake.wait(1.0)
            wake.clear()
            with lock:
                batch, pending[:] = list(pending), []
            for i in range(0, len(batch), BATCH):
                body = "\n".join(batch[i : i + BATCH]).encode()
                r = http.request("POST", f"{url}/write?db={db}&precision=ms", body=body)
                if r.status != 204:
                    print(f"write failed: {r.status} {r.data[:200]!r}", file=sys.stderr)

    def on_message(c, userdata, msg) -> None:
        try:
            lines = [p.to_line_protocol() for p in points(msg.topic, msg.payload)]
        except (ValueError, KeyError) as err:
            print(f"bad message on {msg.topic}: {err}", file=sys.stderr)
            return
        with lock:
            pending.extend(lines)
            if len(pending) >= BATCH:
                wake.set()

    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
    client.on_connect = lambda c, *a: c.subscribe(FILTER, qos=1)
    client.on_message = on_message
    threading.Thread(target=writer, daemon=True).start()
    client.connect("127.0.0.1", port)
    client.loop_forever()


if __name__ == "__main__":
    main()
