"""The common path of every input: validate a batch, count it, hand the good ones to the sink.

MQTT and serial gateways both call ``Pipeline.process``. It returns only once the sink has made
the accepted messages durable (the storage spool appended them), so a source may then
acknowledge them. Rejected messages are counted and logged, and count as done: a bad message is
never retried.

``process`` is ``store(prepare(batch))``: ``prepare`` validates, counts and (if the sink has a
``prepare``, e.g. line protocol) encodes; ``store`` makes the result durable. The MQTT input
runs them in two threads, so the next batch is prepared while this one waits for its fsync.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import NamedTuple, Protocol

from collector.ingest.stats import IngestStats
from collector.ingest.validate import Accepted, InventoryView, Limits, validate

log = logging.getLogger("collector.ingest")


class Incoming(NamedTuple):
    topic: str
    payload: bytes
    received_ms: int


class Sink(Protocol):
    def append(self, messages: Sequence[Accepted]) -> None:
        """Store ``messages``; returning means they survive a kill -9. Raise if not.
        A sink may also offer ``prepare(messages) -> encoded`` (pure, no I/O) and then takes
        ``append(messages, encoded)``."""


class Prepared(NamedTuple):
    accepted: list[Accepted]
    encoded: object  # the sink's prepare(accepted), None if it has none


class PipelineStopped(RuntimeError):
    """The sink kept failing and the daemon is stopping: the batch was not stored."""


class Pipeline:
    def __init__(
        self,
        inventory: Callable[[], InventoryView],
        limits: Limits,
        sink: Sink,
        stats: IngestStats,
        stop: threading.Event | None = None,
        retry_s: float = 1.0,
    ) -> None:
        self._inventory = inventory  # a function, so a reloaded inventory takes effect
        self._limits = limits
        self._sink = sink
        self.stats = stats
        self._stop = stop or threading.Event()
        self._retry_s = retry_s
        self.sink_failures = 0

    def process(self, batch: Sequence[Incoming], source: str) -> list[Accepted]:
        return self.store(self.prepare(batch, source))

    def prepare(self, batch: Sequence[Incoming], source: str) -> Prepared:
        """Validate and count ``batch``, encode the accepted messages; nothing stored yet."""
        inventory = self._inventory()
        results = [
            validate(m.topic, m.payload, m.received_ms, inventory, self._limits) for m in batch
        ]
        self.stats.record(results, source)
        accepted = [r for r in results if isinstance(r, Accepted)]
        encode = getattr(self._sink, "prepare", None)
        encoded = None
        if encode is not None and accepted:
            try:
                encoded = encode(accepted)
            except Exception:  # append encodes again, and a failure there is a sink failure
                encoded = None
        return Prepared(accepted, encoded)

    def store(self, prepared: Prepared) -> list[Accepted]:
        """Make the prepared messages durable (retrying); returns the accepted messages."""
        if prepared.accepted:
            self._store(prepared)
        return prepared.accepted

    def _store(self, prepared: Prepared) -> None:
        # Keep retrying: the source holds its acks meanwhile, so the broker stops sending
        # (receive maximum) rather than the collector dropping data.
        accepted = prepared.accepted
        while True:
            try:
                if prepared.encoded is None:
                    self._sink.append(accepted)
                else:
                    self._sink.append(accepted, prepared.encoded)  # type: ignore[call-arg]
                return
            except Exception as err:  # any sink error: nothing is acked, retry
                self.sink_failures += 1
                log.error("storing %d messages failed, retrying: %s", len(accepted), err)
                if self._stop.wait(self._retry_s):
                    raise PipelineStopped(f"{len(accepted)} messages not stored") from err
