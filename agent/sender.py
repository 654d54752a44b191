"""Pipelined drain of the offline queue over one MQTT connection (used by agent/publisher.py).

Up to ``window`` messages are handed to paho without waiting; each PUBACK (reported by the
Publisher's on_publish callback through ``acks``) marks its queue row for deletion, and acked
rows are deleted in batches (one fsync per batch, not per message). A row is deleted only
after its PUBACK, so a connection that drops mid-drain loses nothing: the next connection
starts again from the oldest row still queued.
"""

from __future__ import annotations

import json
import logging
import queue as queue_mod
import threading
from collections import Counter
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt

from agent.queue import OfflineQueue

log = logging.getLogger(__name__)


def mark_backfill(payload: bytes) -> bytes:
    doc = json.loads(payload)
    doc["backfill"] = True
    return json.dumps(doc, separators=(",", ":")).encode()


@dataclass
class LinkSignals:
    """Events shared by the Publisher, paho's callbacks and the Sender."""

    down: threading.Event = field(default_factory=threading.Event)  # connection lost
    stopping: threading.Event = field(default_factory=threading.Event)  # graceful stop asked
    wake: threading.Event = field(default_factory=threading.Event)  # new data or an ack
    acks: queue_mod.SimpleQueue[tuple[int, bool]] = field(default_factory=queue_mod.SimpleQueue)


class Sender:
    def __init__(
        self,
        queue: OfflineQueue,
        client: mqtt.Client,
        signals: LinkSignals,
        stats: Counter[str],
        *,
        session: int,
        window: int,
        qos: int,
    ) -> None:
        self.queue, self.client, self.sig, self.stats = queue, client, signals, stats
        self.session, self.window, self.qos = session, window, qos
        self.inflight: dict[int, int] = {}  # paho mid -> queue row id
        self.acked: list[int] = []
        self.cursor = 0  # last row id handed to paho

    def run(self) -> None:
        """Send until the connection drops or a stop is asked."""
        sig = self.sig
        while not sig.down.is_set() and not sig.stopping.is_set():
            sig.wake.clear()
            self._collect_acks()
            sent = self._send_more()
            if len(self.acked) >= self.window // 2 or (self.acked and not sent):
                self._flush_acks()
            if not sent:
                sig.wake.wait(0.5)
        self._collect_acks()
        self._flush_acks()

    def _collect_acks(self) -> None:
        while True:
            try:
                mid, failed = self.sig.acks.get_nowait()
            except queue_mod.Empty:
                return
            row_id = self.inflight.pop(mid, None)
            if row_id is None:
                continue  # a status message, not from the queue
            if failed:
                # A PUBACK with an error reason (e.g. not authorized) would fail again forever.
                self.stats["rejected"] += 1
                log.error("broker rejected queued message %d; dropping it", row_id)
            self.acked.append(row_id)

    def _flush_acks(self) -> None:
        if self.acked:
            self.stats["sent"] += self.queue.remove(self.acked)
            self.acked.clear()

    def _send_more(self) -> int:
        room = self.window - len(self.inflight)
        if room <= 0:
            return 0
        rows = self.queue.peek(self.cursor, room)
        for row in rows:
            # backfill: not sent in the connection that was up when it was stored
            live = row.live_session is not None and row.live_session == self.session
            try:
                payload = row.payload if live else mark_backfill(row.payload)
            except ValueError:  # unreadable row (disk damage): skip it rather than stall forever
                self.stats["corrupt"] += 1
                log.error("queued message %d (seq %d) is not valid JSON; dropped", row.id, row.seq)
                self.acked.append(row.id)
                self.cursor = row.id
                continue
            info = self.client.publish(row.topic, payload, qos=self.qos)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                self.sig.down.set()
                return 0
            self.inflight[info.mid] = row.id
            self.cursor = row.id
            if not live:
                self.stats["backfilled"] += 1
        return len(rows)
