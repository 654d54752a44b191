"""MQTT input: a persistent MQTT 5 session, QoS 1, acknowledged only after storage.

Delivery guarantee (at least once, end to end):

- ``clean_start=False`` with a Session Expiry Interval: while the collector is away the broker
  keeps its subscriptions and queues messages for it.
- ``manual_ack=True``: paho does not PUBACK on its own. ``on_message`` only stamps the receive
  time and queues the message; a worker thread takes everything queued (up to ``max_batch``)
  and prepares it (validate, encode: ``Pipeline.prepare``); a commit thread stores each
  prepared batch (spool append, fsync: ``Pipeline.store``) and only then PUBACKs it, batches
  and acks in the order received. At most one prepared batch waits for the commit thread, so
  the next batch is validated while this one's fsync runs.
  A kill -9 before the PUBACK makes the broker redeliver on the next connection: the message
  may be stored twice, never lost. Storage points are keyed by station and reading time, so a
  redelivered copy overwrites itself in InfluxDB.
- Acks of messages received on an earlier connection are dropped: the broker redelivers them
  on the new connection anyway, and a stale packet id could ack a different message.
"""

from __future__ import annotations

import logging
import queue
import ssl
import threading
import time

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from collector.ingest.buffered_client import BufferedClient
from collector.ingest.config import MqttConfig
from collector.ingest.pipeline import Incoming, Pipeline, PipelineStopped, Prepared

log = logging.getLogger("collector.ingest.mqtt")

_Item = tuple[Incoming, int, int, int]  # message, mid, qos, connection generation
_STOP = object()  # queued by stop(): the worker's last item, then the commit thread's


class MqttIngest:
    def __init__(self, config: MqttConfig, pipeline: Pipeline) -> None:
        self.config = config
        self._pipeline = pipeline
        self._queue: queue.SimpleQueue[_Item | object] = queue.SimpleQueue()
        self._generation = 0
        self._connected = threading.Event()
        self._stop = threading.Event()
        self._worker = threading.Thread(target=self._work, name="mqtt-ingest", daemon=True)
        # One prepared batch may wait while another is being stored: bounded look-ahead.
        self._commits: queue.Queue[tuple[list[_Item], Prepared] | object] = queue.Queue(1)
        self._committer = threading.Thread(target=self._commit, name="mqtt-commit", daemon=True)
        self.received = 0
        self.acked = 0
        self.client = self._make_client()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def backlog(self) -> int:
        return self._queue.qsize()

    def _make_client(self) -> BufferedClient:
        c = self.config
        client = BufferedClient(  # 64 KiB socket reads, every packet in them per select()
            CallbackAPIVersion.VERSION2,
            client_id=c.client_id,
            protocol=MQTTProtocolVersion.MQTTv5,
            manual_ack=True,
        )
        if c.username is not None:
            client.username_pw_set(c.username, c.password)
        if c.tls_ca_file:
            client.tls_set(ca_certs=c.tls_ca_file, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message  # PUBLISH with properties, QoS 2: paho's path
        client.on_fast_publish = self._on_publish  # the common case, without paho's objects
        client.reconnect_delay_set(1, 30)
        return client

    def start(self) -> None:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.config.session_expiry_s
        props.ReceiveMaximum = self.config.receive_maximum
        self._committer.start()
        self._worker.start()
        # connect_async: a broker that is down at start-up is retried by the loop thread.
        self.client.connect_async(
            self.config.host,
            self.config.port,
            keepalive=self.config.keepalive_s,
            clean_start=False,
            properties=props,
        )
        self.client.loop_start()

    def stop(self, timeout: float = 10.0) -> None:
        """Store and ack what was received, then disconnect (the session stays on the broker)."""
        self._stop.set()
        self._queue.put(_STOP)  # the worker finishes what came before it, then exits
        deadline = time.monotonic() + timeout
        for thread in (self._worker, self._committer):
            if thread.ident is not None:
                thread.join(max(0.0, deadline - time.monotonic()))
        if self._worker.is_alive() or self._committer.is_alive():
            log.error(
                "mqtt worker did not finish in %.0f s; unacked messages will be redelivered",
                timeout,
            )
        self.client.disconnect()
        self.client.loop_stop()
        self._connected.clear()

    # --- paho callbacks (network thread): keep them short -------------------------------
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.error(
                "broker %s:%d refused connection: %s",
                self.config.host,
                self.config.port,
                reason_code,
            )
            return
        self._generation += 1
        present = bool(getattr(flags, "session_present", False))
        log.info(
            "connected to %s:%d (session present: %s)", self.config.host, self.config.port, present
        )
        # Retained statuses only for a new subscription: a resumed session already has them.
        options = SubscribeOptions(qos=1, retainHandling=SubscribeOptions.RETAIN_SEND_IF_NEW_SUB)
        client.subscribe([(f, options) for f in self.config.filters()])
        self._connected.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self._connected.clear()
        if not self._stop.is_set():
            log.warning("disconnected from broker: %s (reconnecting)", reason_code)

    def _on_message(self, client, userdata, msg: paho.MQTTMessage) -> None:
        self._on_publish(msg.topic, msg.payload, msg.mid, msg.qos)

    def _on_publish(self, topic: str, payload: bytes, mid: int, qos: int) -> None:
        self.received += 1
        incoming = Incoming(topic, payload, time.time_ns() // 1_000_000)
        self._queue.put((incoming, mid, qos, self._generation))

    # --- worker (prepare) and commit thread (store, then ack) -------------------------
    def _work(self) -> None:
        stopping = False
        while not stopping:
            batch, stopping = self._take_batch()
            if not batch:
                continue
            try:
                prepared = self._pipeline.prepare([item[0] for item in batch], "mqtt")
            except Exception:  # a bug must not silently stop ingest: log, do not ack
                log.exception("ingest batch of %d failed; not acknowledged", len(batch))
                continue
            if not self._hand_over((batch, prepared)):
                return  # the commit thread has stopped: nothing more can be acked
        self._hand_over(_STOP)

    def _hand_over(self, item: tuple[list[_Item], Prepared] | object) -> bool:
        while self._committer.is_alive():
            try:
                self._commits.put(item, timeout=0.5)
                return True
            except queue.Full:
                continue
        return False

    def _commit(self) -> None:
        while (item := self._commits.get()) is not _STOP:
            batch, prepared = item  # type: ignore[misc]
            try:
                self._pipeline.store(prepared)
            except PipelineStopped as err:
                log.error("stopping with unstored messages (broker will redeliver): %s", err)
                return
            except Exception:  # a bug must not silently stop ingest: log, do not ack
                log.exception("ingest batch of %d failed; not acknowledged", len(batch))
                continue
            self._ack(batch)

    def _take_batch(self) -> tuple[list[_Item], bool]:
        """Everything queued (up to max_batch), and whether the stop marker was reached:
        what arrives after ``stop()`` is left unacknowledged for the next session."""
        batch: list[_Item] = []
        item = self._queue.get()
        while item is not _STOP:
            batch.append(item)  # type: ignore[arg-type]
            if len(batch) >= self.config.max_batch:
                return batch, False
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return batch, False
        return batch, True

    def _ack(self, batch: list[_Item]) -> None:
        generation = self._generation
        mids = [mid for _, mid, qos, gen in batch if qos == 1 and gen == generation]
        self.client.ack_many(mids)  # one write for the batch's PUBACKs, in order
        for _, mid, qos, gen in batch:
            if qos > 1 and gen == generation:
                self.client.ack(mid, qos)
        self.acked += len(batch)
