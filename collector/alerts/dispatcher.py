"""Dispatcher: delivers notifications through channels, with retries, fallback and counters.

For each notification the channels of ``channel_order`` are tried in turn: a channel gets
``retry.attempts`` tries with exponential backoff; when it gives up (or the person has no address
for it) the next channel is the fallback. ``copy_to`` channels (the MQTT feed) get every
notification as well. Outcomes are counted per channel (sent / failed / fallback / unreachable)
and ``undelivered`` counts notifications no channel could deliver; ``stats()`` exposes them for
/metrics and ``loaxa status``.

``deliver()`` is synchronous; ``submit()`` queues for the worker thread (``start``/``stop``) so
the health engine never waits on a slow SMTP server or modem.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import Counter

from collector.alerts.channels.base import Channel
from collector.alerts.config import AlertsConfig, ChannelName
from collector.alerts.errors import ChannelError, RecipientUnreachable
from collector.alerts.notification import Notification

log = logging.getLogger(__name__)


class Dispatcher:
    def __init__(self, channels: dict[ChannelName, Channel], config: AlertsConfig) -> None:
        self.channels, self.config = channels, config
        self.counts: dict[str, Counter[str]] = {name.value: Counter() for name in ChannelName}
        self.undelivered = 0
        self._lock = threading.Lock()
        self._queue: queue.Queue[Notification | None] = queue.Queue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _count(self, channel: ChannelName, outcome: str) -> None:
        with self._lock:
            self.counts[channel.value][outcome] += 1

    def _try(self, channel: ChannelName, notification: Notification) -> bool:
        retry = self.config.retry
        for attempt in range(retry.attempts):
            try:
                self.channels[channel].send(notification)
            except RecipientUnreachable as err:
                self._count(channel, "unreachable")
                log.info("%s: %s", channel.value, err)
                return False
            except ChannelError as err:
                self._count(channel, "failed")
                log.warning(
                    "%s to %s failed (try %d/%d): %s",
                    channel.value,
                    notification.recipient.id,
                    attempt + 1,
                    retry.attempts,
                    err,
                )
                delay = min(retry.backoff_s * 2**attempt, retry.backoff_max_s)
                if attempt + 1 < retry.attempts and self._stop.wait(delay):
                    return False  # stopping: no more waiting
                continue
            except Exception:  # a channel bug must not kill the worker; counted as a failure
                self._count(channel, "failed")
                log.exception("%s crashed sending to %s", channel.value, notification.recipient.id)
                return False
            self._count(channel, "sent")
            return True
        return False

    def deliver(self, notification: Notification) -> ChannelName | None:
        """Send now; returns the channel that delivered to the person (None: none could)."""
        delivered = None
        order = [c for c in self.config.channel_order if c in self.channels]
        for i, channel in enumerate(order):
            if self._try(channel, notification):
                delivered = channel
                break
            if i + 1 < len(order):
                self._count(channel, "fallback")
                log.warning(
                    "%s gave up on %s: falling back to %s",
                    channel.value,
                    notification.recipient.id,
                    order[i + 1].value,
                )
        if delivered is None:
            with self._lock:
                self.undelivered += 1
            log.error(
                "notification %s to %s not delivered by any channel (%s)",
                notification.kind.value,
                notification.recipient.id,
                ",".join(order),
            )
        for channel in self.config.copy_to:
            if channel in self.channels and channel not in order:
                self._try(channel, notification)
        return delivered

    def stats(self) -> dict[str, object]:
        with self._lock:
            return {
                "channels": {k: dict(v) for k, v in self.counts.items()},
                "undelivered": self.undelivered,
                "queued": self._queue.qsize(),
            }

    # --- worker -------------------------------------------------------------------------
    def submit(self, notifications: list[Notification]) -> None:
        for n in notifications:
            self._queue.put(n)

    def start(self) -> Dispatcher:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="alert-dispatcher", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                self.deliver(item)
            finally:
                self._queue.task_done()

    def join(self) -> None:
        """Wait until everything submitted so far has been handled."""
        self._queue.join()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Finish the queue (backoff waits are cut short), then close the channels."""
        self._stop.set()
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout_s)
            self._thread = None
        for channel in self.channels.values():
            channel.close()
