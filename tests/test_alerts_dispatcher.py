"""Dispatcher logic: bounded retries, fallback order, unreachable recipients, undelivered count.

The channels here are in-memory recorders (the real channels are tested against real peers in
test_alerts_channels.py and test_alerts_sms.py)."""

from __future__ import annotations

from collector.alerts.config import AlertsConfig, ChannelName, RetryConfig
from collector.alerts.dispatcher import Dispatcher
from collector.alerts.errors import ChannelError, RecipientUnreachable
from collector.alerts.notification import Notification
from tests.test_alerts_channels import lan_alert


class Recorder:
    def __init__(self, name: ChannelName, failures: int = 0, error: type = ChannelError) -> None:
        self.name, self.failures, self.error = name, failures, error
        self.tries: list[Notification] = []
        self.closed = False

    def send(self, notification: Notification) -> None:
        self.tries.append(notification)
        if len(self.tries) <= self.failures:
            raise self.error(f"{self.name} try {len(self.tries)} fails")

    def close(self) -> None:
        self.closed = True


def config(**kw) -> AlertsConfig:
    return AlertsConfig(retry=RetryConfig(attempts=3, backoff_s=0.001), **kw)


def test_transient_failure_is_retried_on_the_same_channel():
    sms, mail = Recorder(ChannelName.SMS, failures=2), Recorder(ChannelName.EMAIL)
    d = Dispatcher({ChannelName.SMS: sms, ChannelName.EMAIL: mail}, config(copy_to=[]))
    assert d.deliver(lan_alert()[1]) == ChannelName.SMS
    assert len(sms.tries) == 3 and mail.tries == []
    assert d.stats()["channels"]["sms"] == {"failed": 2, "sent": 1}


def test_unreachable_falls_back_at_once_and_copy_to_gets_a_copy():
    sms = Recorder(ChannelName.SMS, failures=99, error=RecipientUnreachable)
    mail, feed = Recorder(ChannelName.EMAIL), Recorder(ChannelName.MQTT)
    d = Dispatcher(
        {ChannelName.SMS: sms, ChannelName.EMAIL: mail, ChannelName.MQTT: feed}, config()
    )
    assert d.deliver(lan_alert()[1]) == ChannelName.EMAIL
    assert len(sms.tries) == 1 and len(mail.tries) == 1 and len(feed.tries) == 1
    assert d.stats()["channels"]["sms"] == {"unreachable": 1, "fallback": 1}


def test_nothing_delivers_counts_undelivered_and_stop_closes_channels():
    sms, mail = Recorder(ChannelName.SMS, failures=99), Recorder(ChannelName.EMAIL, failures=99)
    d = Dispatcher(
        {ChannelName.SMS: sms, ChannelName.EMAIL: mail},
        config(channel_order=[ChannelName.EMAIL, ChannelName.SMS], copy_to=[]),
    )
    d.start()
    d.submit([lan_alert()[1]])
    d.join()
    d.stop()
    assert d.undelivered == 1 and len(mail.tries) == 3 and len(sms.tries) == 3
    assert d.stats()["channels"]["email"] == {"failed": 3, "fallback": 1}
    assert sms.closed and mail.closed
