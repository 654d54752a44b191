"""The storage unit assembled from StorageConfig: spool + writer + drainer + dead-letter file.

Ingest uses ``append(lines)`` (durable on return: ACK the MQTT message then) and the daemon
``start()``/``stop()``; ``snapshot()`` feeds /metrics.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from collector.storage.config import InfluxApi, StorageConfig
from collector.storage.dead_letter import DeadLetter
from collector.storage.drain import SpoolDrainer
from collector.storage.errors import WriteAlarmError, WriteError
from collector.storage.metrics import StorageMetrics
from collector.storage.spool import Spool
from collector.storage.writers import V1Writer, Writer, make_writer

log = logging.getLogger(__name__)


class Storage:
    def __init__(self, config: StorageConfig, writer: Writer | None = None) -> None:
        self.config = config
        sc = config.spool
        self.spool = Spool(sc.path, sc.max_bytes, sc.full_policy, sc.fsync)
        self.dead_letter = DeadLetter(sc.dead_letter_path)
        self.writer = writer or make_writer(config.influx)
        self.metrics = StorageMetrics()
        self.drainer = SpoolDrainer(
            self.spool,
            self.writer,
            self.dead_letter,
            config.influx,
            self.metrics,
            on_alarm=self._on_alarm,
        )

    def append(self, lines: Sequence[str]) -> None:
        """Spool ``lines`` durably; SpoolFullError (reject policy) means: do not ACK."""
        self.spool.append(lines)

    def start(self) -> None:
        self._create_database()
        self.drainer.start()

    def _create_database(self) -> None:
        if self.config.influx.api is InfluxApi.V1 and self.config.influx.create_database:
            assert isinstance(self.writer, V1Writer)
            try:
                self.writer.create_database()
            except WriteError as err:  # the drainer alarms and retries; start anyway
                log.error("storage: CREATE DATABASE failed: %s", err)

    def _on_alarm(self, err: WriteAlarmError) -> None:
        if err.alarm == "database_not_found":  # dropped or never created: create if allowed
            self._create_database()

    def stop(self) -> None:
        self.drainer.stop()
        self.writer.close()
        self.spool.close()

    def snapshot(self) -> dict[str, object]:
        snap = self.metrics.snapshot(self.spool.depth, self.spool.bytes)
        snap.update(
            spool_dropped_total=self.spool.dropped,
            spool_full_refusals_total=self.spool.full_refusals,
            spool_full=self.spool.alarm_full,
        )
        return snap
