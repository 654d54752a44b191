"""The common path of every input: validate a batch, count it, hand the good ones to the sink.

MQTT and serial gateways both call ``Pipeline.process``. It returns only once the sink has made
the accepted messages durable (the storage spool appended them), so a source may then
acknowledge them. Rejected messages are counted and logged, and count as done: a bad message is
never retried.
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
        """Store ``messages``; returning means they survive a kill -9. Raise if not."""


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
        inventory = self._inventory()
        results = [
            validate(m.topic, m.payload, m.received_ms, inventory, self._limits) for m in batch
        ]
        self.stats.record(results, source)
        accepted = [r for r in results if isinstance(r, Accepted)]
        if accepted:
            self._store(accepted)
        return accepted

    def _store(self, accepted: list[Accepted]) -> None:
        # Keep retrying: the source holds its acks meanwhile, so the broker stops sending
        # (receive maximum) rather than the collector dropping data.
        while True:
            try:
                self._sink.append(accepted)
                return
            except Exception as err:  # any sink error: nothing is acked, retry
                self.sink_failures += 1
                log.error("storing %d messages failed, retrying: %s", len(accepted), err)
                if self._stop.wait(self._retry_s):
                    raise PipelineStopped(f"{len(accepted)} messages not stored") from err
