"""MQTT channel: notifications published on the alerts feed, acknowledgements received.

Alert: ``loaxa/v1/<province>/_ops/alert/<commune>/<station>``, QoS from config, payload
``Notification.to_json_dict()`` (schema v1, UTF-8 JSON; one message per recipient, so the feed
is also the record of who was told what).
Acknowledgement: ``loaxa/v1/<province>/_ops/ack/<commune>/<code>`` with a JSON object
``{"by": "<name>"}`` (schema v1; optional ``"incident"`` overrides the code). A bad topic or
payload is logged and counted, never raised into paho's network thread.

The paho client is the collector's (connected and looped by the ingest unit): the channel only
publishes and adds a message callback.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import paho.mqtt.client as mqtt

from collector.alerts.config import ChannelName, MqttAlertConfig
from collector.alerts.errors import ChannelError
from collector.alerts.notification import Notification
from loaxa import topics

log = logging.getLogger(__name__)


def topic_for(province: str, notification: Notification) -> str:
    if notification.station and notification.commune:
        return topics.alert_topic(province, notification.commune, notification.station)
    if notification.upstream and len(notification.incident_ids) == 1:
        return topics.alert_topic(province, "_upstream", notification.upstream)
    return topics.alert_topic(province, "_group", notification.recipient.id)


class MqttChannel:
    name = ChannelName.MQTT

    def __init__(
        self, client: mqtt.Client, province: str, config: MqttAlertConfig, timeout_s: float = 10.0
    ) -> None:
        self.client, self.province, self.config, self.timeout_s = (
            client,
            province,
            config,
            timeout_s,
        )

    def send(self, notification: Notification) -> None:
        payload = json.dumps(notification.to_json_dict(), ensure_ascii=False).encode("utf-8")
        topic = topic_for(self.province, notification)
        try:
            info = self.client.publish(topic, payload, qos=self.config.qos)
            info.wait_for_publish(self.timeout_s)
        except (ValueError, RuntimeError) as err:
            raise ChannelError(f"MQTT publish to {topic}: {err}") from err
        if not info.is_published():
            raise ChannelError(f"MQTT publish to {topic}: not confirmed in {self.timeout_s}s")

    def close(self) -> None:
        """The client belongs to the collector: nothing to close here."""


class MqttAckListener:
    """Subscribes to acknowledgements and calls ``on_ack(code_or_incident, by)``."""

    def __init__(
        self, client: mqtt.Client, province: str, on_ack: Callable[[str, str], object]
    ) -> None:
        self.client, self.province, self.on_ack = client, province, on_ack
        self.filter = topics.ack_subscription(province)
        self.accepted = 0
        self.rejected = 0

    def attach(self) -> None:
        """Add the callback and subscribe (call again from on_connect after a reconnect)."""
        self.client.message_callback_add(self.filter, self._on_message)
        self.client.subscribe(self.filter, qos=1)

    def _on_message(self, _client: mqtt.Client, _userdata: object, msg: mqtt.MQTTMessage) -> None:
        try:
            _, _, code = topics.parse_ack_topic(msg.topic)
            data = json.loads(msg.payload.decode("utf-8"))
            if not isinstance(data, dict) or not isinstance(data.get("by"), str) or not data["by"]:
                raise ValueError('payload must be a JSON object with a non-empty "by"')
            target = data.get("incident") if isinstance(data.get("incident"), str) else code
            self.on_ack(target, data["by"])
            self.accepted += 1
        except Exception as err:  # paho's thread must survive any bad message
            self.rejected += 1
            log.warning("acknowledgement on %s rejected: %s", msg.topic, err)
