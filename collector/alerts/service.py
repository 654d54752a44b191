"""AlertService: the alerts unit as the collector daemon runs it.

Wires the pure :class:`AlertRouter` to the I/O: a :class:`Dispatcher` (worker thread) with the
enabled channels, the SMS inbox (replies "OK <code>") and the MQTT acknowledgement listener.
Every entry point takes the router lock, because health events, the tick timer, the SMS poller
and paho's network thread all call in from their own threads.

    service = AlertService.from_config(config.alerts, inventory, mqtt_client, province_slug)
    service.start()
    service.handle(event)            # from the health engine
    service.tick()                   # every ~15 s (apscheduler)
    service.acknowledge("123", "Nông Văn Minh")
    service.stats()                  # router counters + per-channel outcomes, for /metrics
    service.stop()
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from collector.alerts.channels.base import Channel
from collector.alerts.channels.email import EmailChannel
from collector.alerts.channels.mqtt import MqttAckListener, MqttChannel
from collector.alerts.channels.sms import SmsChannel, SmsInbox
from collector.alerts.channels.webhook import WebhookChannel
from collector.alerts.config import AlertsConfig, ChannelName
from collector.alerts.dispatcher import Dispatcher
from collector.alerts.notification import Notification
from collector.alerts.pdu import IncomingSms
from collector.alerts.router import AlertRouter
from collector.health.events import HealthEvent

log = logging.getLogger(__name__)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class AlertService:
    def __init__(
        self,
        router: AlertRouter,
        dispatcher: Dispatcher,
        inbox: SmsInbox | None = None,
        acks: MqttAckListener | None = None,
        clock: Callable[[], int] = _now_ms,
    ) -> None:
        self.router, self.dispatcher, self.inbox, self.acks = router, dispatcher, inbox, acks
        self.clock = clock
        self._lock = threading.Lock()
        # Writes the router state (open alerts, their codes, the next code) where a restart
        # restores it from; the daemon sets it. Called under the lock, before anything is sent.
        self.persist: Callable[[dict[str, object]], None] | None = None

    @classmethod
    def from_config(
        cls,
        config: AlertsConfig,
        inventory: Any,
        mqtt_client: Any = None,
        province: str | None = None,
    ) -> AlertService:
        province = province or inventory.province.slug
        channels: dict[ChannelName, Channel] = {}
        sms: SmsChannel | None = None
        if config.sms.enabled:
            channels[ChannelName.SMS] = sms = SmsChannel(config.sms)
        if config.email.enabled:
            channels[ChannelName.EMAIL] = EmailChannel(config.email)
        if config.webhook.enabled:
            channels[ChannelName.WEBHOOK] = WebhookChannel(config.webhook)
        if config.mqtt.enabled and mqtt_client is not None:
            channels[ChannelName.MQTT] = MqttChannel(mqtt_client, province, config.mqtt)
        service = cls(AlertRouter(inventory, config), Dispatcher(channels, config))
        if sms is not None:
            service.inbox = SmsInbox(sms.modem, service.on_sms, config.sms.poll_interval_s)
        if config.mqtt.enabled and config.mqtt.accept_acks and mqtt_client is not None:
            service.acks = MqttAckListener(mqtt_client, province, service.on_mqtt_ack)
        return service

    # --- inputs -------------------------------------------------------------------------
    def _send(self, notifications: list[Notification]) -> list[Notification]:
        if notifications:
            # Write-ahead: the state that gave out these codes is on disk before any of them
            # leaves, so a collector killed right after sending (kill -9, a group partition
            # moving) restores them: no code handed out twice, no incident alerted twice.
            self._persist()
        self.dispatcher.submit(notifications)
        return notifications

    def save(self) -> None:
        """Write the router state now (tick, stop); serialised with the write-ahead saves."""
        with self._lock:
            self._persist()

    def _persist(self) -> None:
        if self.persist is None:
            return
        try:
            self.persist(self.router.snapshot())
        except OSError as err:  # sending matters more than the record: logged and counted
            self.router.stats["persist_errors"] += 1
            log.error("alerts: cannot save the alert state: %s", err)

    def handle(self, event: HealthEvent) -> list[Notification]:
        with self._lock:
            try:
                return self._send(self.router.on_event(event, self.clock()))
            except Exception:  # one malformed event must not stop alerting for the others
                self.router.stats["event_errors"] += 1
                log.exception("alerts: event %s for %s failed", event.kind, event.station)
                return []

    def tick(self) -> list[Notification]:
        with self._lock:
            return self._send(self.router.tick(self.clock()))

    def acknowledge(self, incident_or_code: str, by: str) -> list[Notification]:
        """For ``loaxa ack`` and the MQTT listener; raises UnknownIncident if nothing is open."""
        with self._lock:
            return self._send(self.router.acknowledge(incident_or_code, by, self.clock()))

    def on_sms(self, sms: IncomingSms) -> None:
        with self._lock:
            self._send(self.router.apply_reply(sms.text, sms.sender, self.clock()))

    def on_mqtt_ack(self, incident_or_code: str, by: str) -> None:
        self.acknowledge(incident_or_code, by)

    # --- life cycle ---------------------------------------------------------------------
    def start(self) -> AlertService:
        self.dispatcher.start()
        if self.inbox is not None:
            self.inbox.start()
        if self.acks is not None:
            self.acks.attach()
        return self

    def stop(self) -> None:
        if self.inbox is not None:
            self.inbox.stop()
        self.dispatcher.stop()

    def stats(self) -> dict[str, object]:
        with self._lock:
            router = dict(self.router.stats)
            open_alerts = len(self.router.alerts)
        inbox = {"received": self.inbox.received, "errors": self.inbox.errors} if self.inbox else {}
        acks = {"accepted": self.acks.accepted, "rejected": self.acks.rejected} if self.acks else {}
        return {
            "router": router,
            "open_alerts": open_alerts,
            "sms_inbox": inbox,
            "mqtt_acks": acks,
            **self.dispatcher.stats(),
        }

    def snapshot(self) -> dict[str, object]:
        with self._lock:
            return self.router.snapshot()

    def restore(self, data: dict) -> None:
        with self._lock:
            self.router.restore(data)
