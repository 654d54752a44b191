"""The subscriber limit: paho-mqtt that only counts (benchmark peer (a)).

    python bare_counter.py PORT EXPECTED CLIENT_ID

Prints ``ready`` once subscribed (QoS 1) and ``done <count>`` when EXPECTED messages arrived.
"""

from __future__ import annotations

import sys

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

FILTER = "loaxa/v1/+/+/+/+"


def main() -> None:
    port, expected, client_id = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    count = 0
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id)

    def on_connect(c, userdata, flags, reason, props) -> None:
        c.subscribe(FILTER, qos=1)

    def on_subscribe(c, userdata, mid, reasons, props) -> None:
        print("ready", flush=True)

    def on_message(c, userdata, msg) -> None:
        nonlocal count
        count += 1
        if count == expected:
            print(f"done {count}", flush=True)

    client.on_connect, client.on_subscribe, client.on_message = on_connect, on_subscribe, on_message
    client.connect("127.0.0.1", port)
    client.loop_forever()


if __name__ == "__main__":
    main()
