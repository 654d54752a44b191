"""Acknowledge an alert from outside the daemon (``loaxa ack``): one MQTT message.

The running collector listens on ``loaxa/v1/<province>/_ops/ack/+/+`` (see loaxa/topics.py), so
the CLI needs no access to the daemon's state: it publishes ``{"by": "<name>"}`` to
``.../_ops/ack/_any/<code>`` (or with ``"incident": "<id>"`` when given a full incident id) and
waits for the broker's PUBACK.
"""

from __future__ import annotations

import json
import re

import paho.mqtt.client as mqtt

from collector.alerts.errors import ChannelError
from loaxa import topics


def ack_message(province: str, incident_or_code: str, by: str) -> tuple[str, bytes]:
    """(topic, payload) acknowledging ``incident_or_code`` on behalf of ``by``."""
    if not by.strip():
        raise ValueError("say who acknowledges (a name)")
    target = incident_or_code.strip()
    if re.fullmatch(r"\d{1,6}", target):
        return topics.ack_topic(province, "_any", target), json.dumps({"by": by}).encode()
    payload = {"by": by, "incident": target}
    return topics.ack_topic(province, "_any", "incident"), json.dumps(payload).encode()


def publish_ack(
    host: str,
    port: int,
    province: str,
    incident_or_code: str,
    by: str,
    timeout_s: float = 10.0,
    username: str | None = None,
    password: str | None = None,
) -> None:
    topic, payload = ack_message(province, incident_or_code, by)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="")
    if username:
        client.username_pw_set(username, password)
    try:
        client.connect(host, port, keepalive=30)
        client.loop_start()
        info = client.publish(topic, payload, qos=1)
        info.wait_for_publish(timeout_s)
        if not info.is_published():
            raise ChannelError(f"acknowledgement not confirmed by {host}:{port} in {timeout_s}s")
    except (OSError, ValueError, RuntimeError) as err:
        raise ChannelError(f"acknowledgement to {host}:{port} failed: {err}") from err
    finally:
        client.loop_stop()
        client.disconnect()
