"""Durable spool of line-protocol lines between ingest and InfluxDB (SQLite, WAL journal).

Ingest calls ``append(lines)``; when it returns the lines are committed (with ``fsync=True``,
``synchronous=FULL``: on disk, so the MQTT message may be ACKed). The drainer reads the oldest
rows with ``peek`` and deletes them with ``delete_range`` only after InfluxDB accepted them, so a
crash (kill -9, power cut) at any point leaves unwritten rows in place to be written again;
rewriting a point is harmless because its key (measurement + tags + timestamp) is unchanged.

Bounded by ``max_bytes`` of line text. When full: policy ``reject`` raises SpoolFullError
(ingest leaves the message un-ACKed, the broker and the agents' own queues hold it); policy
``drop_oldest`` deletes the oldest rows and counts them. Either way ``alarm_full`` is set and an
error is logged. A full disk (SQLITE_FULL) raises SpoolError under the same alarm (and
``disk_full``), cleared by the next append that succeeds (fault case 11).

Table v1: ``lines(id INTEGER PRIMARY KEY AUTOINCREMENT, line TEXT NOT NULL)``.

Two connections, so the drainer does not stall ingest: appends (and ``drop_oldest``) use the
writer connection (``synchronous=FULL``); ``peek`` reads through the drainer's own connection
without the spool lock (a WAL reader never blocks the writer), and ``delete_range`` deletes
through it under the lock with ``synchronous=NORMAL``: a delete lost in a power cut only means
those points are written to InfluxDB again (same keys: harmless), while every append still
reaches the disk before it returns (its fsync also covers the deletes before it).
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from collector.storage.config import SpoolFullPolicy
from collector.storage.errors import SpoolError, SpoolFullError

log = logging.getLogger(__name__)

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS lines (id INTEGER PRIMARY KEY AUTOINCREMENT, line TEXT NOT NULL)"
)


class Spool:
    def __init__(
        self,
        path: Path | str,
        max_bytes: int = 512 * 1024 * 1024,
        full_policy: SpoolFullPolicy = SpoolFullPolicy.REJECT,
        fsync: bool = True,
    ) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.full_policy = SpoolFullPolicy(full_policy)
        self._lock = threading.Lock()
        self._read_lock = threading.Lock()  # one statement at a time on the drainer connection
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={'FULL' if fsync else 'NORMAL'}")
            self._db.execute(_SCHEMA)
            count, size = self._db.execute(
                "SELECT count(*), coalesce(sum(length(CAST(line AS BLOB))), 0) FROM lines"
            ).fetchone()
            self._drain_db = sqlite3.connect(
                self.path, check_same_thread=False, isolation_level=None, timeout=30.0
            )
            self._drain_db.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.Error as err:
            raise SpoolError(f"cannot open spool {self.path}: {err}") from err
        self.depth: int = count
        self.bytes: int = size
        self.appended = 0
        self.dropped = 0  # lines deleted by the drop_oldest policy
        self.full_refusals = 0  # appends refused by the reject policy
        self.alarm_full = False
        self.disk_full = False  # the file system refused a write (SQLITE_FULL)
        self._new_data = threading.Condition(self._lock)

    def append(self, lines: Sequence[str]) -> None:
        """Store ``lines`` durably (one transaction). SpoolFullError under the reject policy."""
        if not lines:
            return
        size = len("\n".join(lines).encode()) - len(lines) + 1  # UTF-8 bytes of the lines
        with self._lock:
            if self.bytes + size > self.max_bytes:
                self._full(size)
            try:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany("INSERT INTO lines(line) VALUES (?)", ((x,) for x in lines))
                self._db.execute("COMMIT")
            except sqlite3.Error as err:
                self._rollback()
                if isinstance(err, sqlite3.OperationalError) and "full" in str(err):
                    self._disk_full(err)  # SQLITE_FULL: the disk, not our byte bound
                raise SpoolError(f"spool append failed: {err}") from err
            if self.disk_full:
                self.disk_full = self.alarm_full = False
                log.warning("spool %s: disk space is back, appending again", self.path)
            self.depth += len(lines)
            self.bytes += size
            self.appended += len(lines)
            self._new_data.notify_all()

    def _full(self, size: int) -> None:
        if not self.alarm_full:
            log.error(
                "ALARM spool %s full (%d of %d bytes, policy %s): InfluxDB not draining?",
                self.path,
                self.bytes,
                self.max_bytes,
                self.full_policy.value,
            )
        self.alarm_full = True
        if self.full_policy is SpoolFullPolicy.REJECT:
            self.full_refusals += 1
            raise SpoolFullError(
                f"spool full ({self.bytes} + {size} > {self.max_bytes} bytes); not stored"
            )
        while self.depth and self.bytes + size > self.max_bytes:
            rows = self._db.execute(
                "SELECT id, length(CAST(line AS BLOB)) FROM lines ORDER BY id LIMIT 1000"
            ).fetchall()
            need = self.bytes + size - self.max_bytes
            freed, last, count = 0, rows[-1][0], len(rows)
            for i, (row_id, length) in enumerate(rows):
                freed += length
                if freed >= need:
                    last, count = row_id, i + 1
                    break
            self._db.execute("DELETE FROM lines WHERE id <= ?", (last,))
            self.depth -= count
            self.bytes -= sum(length for _, length in rows[:count])
            self.dropped += count
            log.error("spool full: dropped the %d oldest lines (policy drop_oldest)", count)

    def _disk_full(self, err: sqlite3.Error) -> None:
        # Raised as an alarm like the byte bound (/healthz spool_not_full), logged once: the
        # caller retries without acknowledging, so the broker keeps the data meanwhile.
        if not self.disk_full:
            log.error("ALARM spool %s: disk full (%s); not stored, will retry", self.path, err)
        self.disk_full = self.alarm_full = True

    def _rollback(self) -> None:
        with contextlib.suppress(sqlite3.Error):  # no transaction was open
            self._db.execute("ROLLBACK")

    def peek(self, limit: int) -> list[tuple[int, str]]:
        """The oldest ``limit`` rows as (id, line), without removing them."""
        with self._read_lock:
            return self._drain_db.execute(
                "SELECT id, line FROM lines ORDER BY id LIMIT ?", (limit,)
            ).fetchall()

    def delete_range(self, first_id: int, last_id: int) -> int:
        """Remove rows first_id..last_id (written or dead-lettered); returns how many."""
        with self._lock, self._read_lock:
            lengths = self._drain_db.execute(
                "DELETE FROM lines WHERE id BETWEEN ? AND ? RETURNING length(CAST(line AS BLOB))",
                (first_id, last_id),
            ).fetchall()
            count, size = len(lengths), sum(n for (n,) in lengths)
            self.depth -= count
            self.bytes -= size
            if self.alarm_full and self.bytes < self.max_bytes * 0.9:
                log.warning("spool %s below 90%% of max_bytes again", self.path)
                self.alarm_full = False
            return count

    def wait_for(
        self, count: int, timeout: float, interrupt: Callable[[], bool] = lambda: False
    ) -> bool:
        """Block until ``depth >= count``, ``interrupt()`` (see ``wake``) or ``timeout`` s."""
        with self._new_data:
            return self._new_data.wait_for(lambda: self.depth >= count or interrupt(), timeout)

    def wake(self) -> None:
        with self._new_data:
            self._new_data.notify_all()

    def close(self) -> None:
        with self._lock, self._read_lock:
            self._drain_db.close()
            self._db.close()
