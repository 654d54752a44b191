"""MQTT session of the agent: status + Last Will, store-and-forward, seq, backfill.

Rules (docs/PAYLOADS.md, "Agent session rules", v1):
- Before every connection attempt the session counter (agent/state.py) is incremented and the
  Last Will (retained ``status`` ``offline`` with that session) is set on a fresh client. On
  CONNACK the agent publishes a retained ``online`` with the same session.
- Every telemetry/event/broadcast payload is validated, numbered (``seq``, one sequence for all
  kinds) and stored in the OfflineQueue before anything is sent; it is deleted only after the
  broker's PUBACK. Sending is pipelined: up to ``max_inflight`` unacknowledged messages.
- ``backfill`` is true when a message is not sent in the connection that was up when it was
  stored: it was stored while disconnected, or its connection dropped before the PUBACK, or
  the agent restarted. Such messages are sent oldest first with their original ts and seq.
- Status messages do not take a seq; their ``seq`` is the next data seq, so the collector
  knows every data seq below it was produced.
"""

from __future__ import annotations

import logging
import queue as queue_mod
import random
import socket
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from pydantic import ValidationError

from agent.mqtt_config import MqttConfig, StationConfig, make_client
from agent.queue import OfflineQueue, QueueError
from agent.sender import LinkSignals, Sender
from agent.state import AgentState
from loaxa import __version__, payloads
from loaxa.topics import Kind

log = logging.getLogger(__name__)

_MODELS: dict[Kind, type[payloads.Telemetry | payloads.Event | payloads.Broadcast]] = {
    Kind.TELEMETRY: payloads.Telemetry,
    Kind.EVENT: payloads.Event,
    Kind.BROADCAST: payloads.Broadcast,
}


def describe_error(err: BaseException) -> str:
    """A technician-readable reason for a failed connection."""
    if isinstance(err, ConnectionRefusedError):
        return "connection refused"
    if isinstance(err, socket.gaierror):
        return f"host name not resolved: {err.strerror}"
    if isinstance(err, TimeoutError | socket.timeout):
        return "timed out"
    if isinstance(err, ssl.SSLError):
        return f"TLS error: {err.reason or err}"
    return getattr(err, "strerror", None) or str(err) or type(err).__name__


class Publisher:
    def __init__(
        self,
        station: StationConfig,
        mqtt_cfg: MqttConfig,
        offline_queue: OfflineQueue,
        state: AgentState,
        *,
        agent_version: str = __version__,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.station, self.cfg, self.queue, self.state = station, mqtt_cfg, offline_queue, state
        self.agent_version = agent_version
        self._clock = clock
        self.client_id = mqtt_cfg.client_id or f"loaxa-agent-{station.id}"
        self.stats: Counter[str] = Counter()
        self._device: dict[str, Any] = {}
        self._client: mqtt.Client | None = None
        self._session = state.session
        self._connected = threading.Event()
        self._sig = LinkSignals()
        self._down, self._stopping, self._wake = self._sig.down, self._sig.stopping, self._sig.wake
        self._connack: queue_mod.SimpleQueue[tuple[bool, str, int | None]] = queue_mod.SimpleQueue()
        self._thread: threading.Thread | None = None
        offline_queue.ensure_seq_at_least(state.seq_floor)

    # -- public interface -------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def session(self) -> int:
        return self._session

    def snapshot(self) -> dict[str, Any]:
        """Counters for logs and health checks (link state, queue depth, totals)."""
        return {
            "connected": self.connected,
            "session": self._session,
            "next_seq": self.queue.next_seq,
            "queued": len(self.queue),
            "queued_bytes": self.queue.bytes,
            "evicted_total": self.queue.evicted_total,
            **self.stats,
        }

    def publish(self, kind: Kind | str, fields: dict[str, Any], ts_ms: int) -> None:
        """Validate, number, store durably and wake the sender. Never raises on bad input."""
        try:
            kind = Kind(kind)
            model = _MODELS[kind]
        except (KeyError, ValueError):
            self.stats["invalid"] += 1
            log.error("cannot publish kind %r: only telemetry, event, broadcast are queued", kind)
            return
        live = self._session if self._connected.is_set() else None
        topic = self.station.topic(kind)

        def build(seq: int) -> tuple[str, bytes]:
            msg = model(station=self.station.id, session=self._session, seq=seq, ts=ts_ms, **fields)
            return topic, payloads.to_json(msg)

        try:
            self.queue.append(build, ts_ms, live)
        except (ValidationError, TypeError) as err:
            self.stats["invalid"] += 1
            log.error("dropping invalid %s (ts %d): %s", kind, ts_ms, _short(err))
            return
        except (QueueError, OSError) as err:
            self.stats["store_failed"] += 1
            log.error("could not store %s in the offline queue: %s", kind, err)
            return
        self.stats[f"queued_{kind.value}"] += 1
        self._wake.set()

    def set_device_info(
        self, firmware: str | None, hardware: str | None, device_id: int | None
    ) -> None:
        """Controller identity for the status message; republished at once when connected."""
        self._device = {"firmware": firmware, "hardware": hardware, "device_id": device_id}
        client = self._client
        if client is not None and self._connected.is_set():
            self._publish_status(client, "online")

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="mqtt-link", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Publish a retained offline (reason "graceful"), disconnect, stop the link thread."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout + 5)
            self._thread = None
        self.state.save_seq_floor(self.queue.next_seq)

    # -- status -----------------------------------------------------------------------------
    def _status(self, state: str, session: int, reason: str | None = None) -> bytes:
        msg = payloads.Status(
            station=self.station.id,
            session=session,
            seq=self.queue.next_seq,
            ts=int(self._clock() * 1000),
            state=state,
            agent_version=self.agent_version,
            reason=reason,
            **self._device,
        )
        return payloads.to_json(msg)

    def _publish_status(self, client: mqtt.Client, state: str, reason: str | None = None):
        payload = self._status(state, self._session, reason)
        return client.publish(self.station.topic(Kind.STATUS), payload, qos=1, retain=True)

    # -- link thread ------------------------------------------------------------------------
    def _run(self) -> None:
        delay = self.cfg.retry_min_s
        # Power comes back to a whole province at once: spread the first connections too.
        wait = random.uniform(0, self.cfg.retry_min_s)
        while not self._stopping.wait(wait):
            try:
                ok, reason = self._connect()
            except Exception as err:  # never let the link thread die
                ok, reason = False, f"unexpected error: {err!r}"
                log.exception("MQTT link error")
            if self._stopping.is_set():
                break
            if ok:
                delay = self.cfg.retry_min_s
                # A broker restart or a province-wide outage drops every station at once:
                # reconnecting after a random part of retry_min_s spreads them out.
                wait = random.uniform(0, self.cfg.retry_min_s)
                continue
            self.stats["connect_failures"] += 1
            wait = random.uniform(delay / 2, delay)  # jittered, so stations do not stay in step
            log.warning(
                "broker %s unreachable (%s), %d messages queued, retrying in %.1f s",
                self.cfg.address,
                reason,
                len(self.queue),
                wait,
            )
            delay = min(delay * 2, self.cfg.retry_max_s)

    def _connect(self) -> tuple[bool, str]:
        """One connection: returns (True, "") after a session that was up, else (False, why)."""
        self._session = self.state.next_session()
        self.state.save_seq_floor(self.queue.next_seq)
        will = self._status("offline", self._session)
        client = make_client(self.cfg, self.client_id, self.station.topic(Kind.STATUS), will)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        self._down.clear()
        try:
            client.connect(self.cfg.host, self.cfg.port, self.cfg.keepalive_s)
        except (OSError, ssl.SSLError) as err:
            return False, describe_error(err)
        client.loop_start()
        try:
            answer = self._wait_connack(15.0)
            if answer is None:
                return False, "no CONNACK from the broker within 15 s"
            accepted, why, receive_max = answer
            if not accepted:
                return False, f"connection refused by broker: {why}"
            self._serve(client, receive_max)
            return True, ""
        finally:
            self._connected.clear()
            self._client = None
            client.loop_stop()
            self._drain_connack()

    def _serve(self, client: mqtt.Client, receive_max: int | None) -> None:
        self._client = client
        self._connected.set()
        self.stats["connections"] += 1
        log.info(
            "connected to broker %s (MQTT %s, session %d), %d messages queued",
            self.cfg.address,
            self.cfg.protocol,
            self._session,
            len(self.queue),
        )
        self._publish_status(client, "online")
        self._report_evictions()
        window = min(self.cfg.max_inflight, receive_max or self.cfg.max_inflight)
        Sender(
            self.queue, client, self._sig, self.stats,
            session=self._session, window=window, qos=self.cfg.qos,
        ).run()  # fmt: skip
        if self._stopping.is_set() and not self._down.is_set():
            info = self._publish_status(client, "offline", "graceful")
            deadline = time.monotonic() + 5
            while (
                not info.is_published() and time.monotonic() < deadline and not self._down.is_set()
            ):
                self._wake.wait(0.1)
                self._wake.clear()
            client.disconnect()
            log.info("disconnected from broker %s (graceful stop)", self.cfg.address)
        else:
            log.warning(
                "lost connection to broker %s, %d messages queued",
                self.cfg.address,
                len(self.queue),
            )

    def _report_evictions(self) -> None:
        evicted = self.queue.evicted_unreported
        if evicted <= 0:
            return
        log.warning("offline queue was full: %d oldest messages were dropped", evicted)
        fields = {"code": payloads.EventCode.QUEUE_EVICTED, "value": evicted, "origin": "agent"}
        self.publish(Kind.EVENT, fields, int(self._clock() * 1000))
        self.queue.mark_evictions_reported(evicted)

    def _wait_connack(self, timeout: float) -> tuple[bool, str, int | None] | None:
        deadline = time.monotonic() + timeout
        while not self._stopping.is_set() and time.monotonic() < deadline:
            try:
                return self._connack.get(timeout=0.2)
            except queue_mod.Empty:
                continue
        return None

    def _drain_connack(self) -> None:
        while True:
            try:
                self._connack.get_nowait()
            except queue_mod.Empty:
                return

    # -- paho callbacks (network thread: no locks shared with the sender) --------------------
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        receive_max = getattr(properties, "ReceiveMaximum", None) if properties else None
        self._connack.put((not reason_code.is_failure, str(reason_code), receive_max))

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self._down.set()
        self._connack.put((False, f"disconnected: {reason_code}", None))
        self._wake.set()

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        self._sig.acks.put((mid, bool(reason_code.is_failure)))
        self._wake.set()


def _short(err: Exception) -> str:
    if isinstance(err, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors()[:5]
        )
    return str(err)
