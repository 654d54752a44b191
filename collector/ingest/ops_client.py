"""A second MQTT connection for operations traffic: alert feed out, acknowledgements in.

Kept apart from the ingest session on purpose: ingest uses ``manual_ack`` (ACK after storage),
which would leave alert acknowledgements unacknowledged, and a burst of alerts must not queue
behind 30k telemetry messages. Persistent session too (``<client_id>-ops``), so an
acknowledgement published while the collector restarts is delivered when it is back.
"""

from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Callable

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from collector.ingest.config import MqttConfig

log = logging.getLogger("collector.ops")


class OpsClient:
    def __init__(self, config: MqttConfig) -> None:
        self.config = config
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"{config.client_id}-ops",
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        if config.ops_username is not None:
            self.client.username_pw_set(config.ops_username, config.ops_password)
        elif config.username is not None:
            # A broker that takes the user name as client id (deploy/mosquitto) would make this
            # session and the ingest session end each other: it needs mqtt.ops_username.
            log.warning(
                "ops session shares the account %r with ingest: set mqtt.ops_username on a "
                "broker with use_username_as_clientid",
                config.username,
            )
            self.client.username_pw_set(config.username, config.password)
        if config.tls_ca_file:
            self.client.tls_set(ca_certs=config.tls_ca_file, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        self.client.on_connect = self._on_connect
        self.client.reconnect_delay_set(1, 30)
        self.on_connect: list[Callable[[], None]] = []  # e.g. (re)subscribe to acknowledgements
        self.connected = threading.Event()

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.error("ops connection refused: %s", reason_code)
            return
        self.connected.set()
        for hook in self.on_connect:
            try:
                hook()
            except Exception:  # one failing hook must not keep the others from running
                log.exception("ops on_connect hook failed")

    def start(self) -> None:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.config.session_expiry_s
        self.client.connect_async(
            self.config.host,
            self.config.port,
            keepalive=self.config.keepalive_s,
            clean_start=False,
            properties=props,
        )
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
        self.connected.clear()
