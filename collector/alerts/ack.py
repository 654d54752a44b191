"""Acknowledge an alert from outside the daemon (``loaxa ack``): one MQTT message.

The running collector listens on ``loaxa/v1/<province>/_ops/ack/+/+`` (see loaxa/topics.py), so
the CLI needs no access to the daemon's state: it publishes ``{"by": "<name>"}`` to
``.../_ops/ack/_any/<code>`` (or with ``"incident": "<id>"`` when given a full incident id) and
waits for the broker's PUBACK. Against the production broker it connects with the operator's
own account and TLS (``send_ack`` with an :class:`OpsConfig`, see ops_config.py), never the
collector's: the broker uses the user name as client id and would end the collector's session.
"""

from __future__ import annotations

import json
import re
import ssl
import threading
from pathlib import Path

import paho.mqtt.client as mqtt

from collector.alerts.errors import ChannelError
from collector.alerts.ops_config import OpsConfig
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
    tls_ca_file: str | Path | None = None,
    client_id: str | None = None,
) -> None:
    """Publish the acknowledgement (MQTT 5, QoS 1) and wait for the broker's PUBACK.

    A refused login (CONNACK) or a refused publish (PUBACK >= 0x80: the ACL says no) raises
    ChannelError at once, naming the user but never the password."""
    topic, payload = ack_message(province, incident_or_code, by)
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=client_id if client_id is not None else (username or ""),
        protocol=mqtt.MQTTv5,
        reconnect_on_failure=False,
    )
    if username:
        client.username_pw_set(username, password)
    if tls_ca_file:
        client.tls_set(ca_certs=str(tls_ca_file), tls_version=ssl.PROTOCOL_TLS_CLIENT)
    answers: dict[str, object] = {}
    connack, puback = threading.Event(), threading.Event()

    def on_connect(c, userdata, flags, reason_code, properties) -> None:
        answers["connack"] = reason_code
        connack.set()

    def on_publish(c, userdata, mid, reason_code, properties) -> None:
        answers["puback"] = reason_code
        puback.set()

    client.on_connect, client.on_publish = on_connect, on_publish
    where = f"{host}:{port}" + (f" as {username!r}" if username else "")
    try:
        client.connect(host, port, keepalive=30)
        client.loop_start()
        if not connack.wait(timeout_s):
            raise ChannelError(f"no answer from the broker at {where} in {timeout_s}s")
        code = answers["connack"]
        if getattr(code, "is_failure", False):
            raise ChannelError(f"broker at {where} refused the login: {code}")
        client.publish(topic, payload, qos=1)
        if not puback.wait(timeout_s):
            raise ChannelError(f"acknowledgement not confirmed by {where} in {timeout_s}s")
        code = answers["puback"]
        if getattr(code, "is_failure", False):
            raise ChannelError(
                f"broker at {where} refused the acknowledgement ({code}): "
                "is this an operator account?"
            )
    except (OSError, ValueError, RuntimeError, ssl.SSLError) as err:
        raise ChannelError(f"acknowledgement to {where} failed: {err}") from err
    finally:
        client.loop_stop()
        client.disconnect()


def send_ack(ops: OpsConfig, province: str, incident_or_code: str, by: str) -> None:
    """``publish_ack`` with the operator's own account (``--ops-config``)."""
    publish_ack(
        ops.host,
        ops.port,
        province,
        incident_or_code,
        by,
        timeout_s=ops.timeout_s,
        username=ops.username,
        password=ops.secret(),
        tls_ca_file=ops.tls_ca_file,
        client_id=ops.client_id,
    )
