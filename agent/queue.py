"""Durable, bounded store-and-forward queue for outgoing MQTT messages (SQLite, WAL).

Every payload the agent produces is written here first and deleted only after the broker's
PUBACK, so a dead link, a restart or ``kill -9`` loses nothing that ``append`` returned for.

Storage format (schema version 1, ``PRAGMA user_version = 1``)::

    messages(id INTEGER PRIMARY KEY AUTOINCREMENT,  -- send order: oldest first
             seq INTEGER, ts INTEGER,               -- payload seq / reading time (ms, UTC)
             topic TEXT, payload BLOB,              -- exactly what goes on the wire
             live_session INTEGER NULL,             -- MQTT session up when stored; NULL: offline
             size INTEGER)                          -- accounted bytes (payload+topic+overhead)
    meta(key TEXT PRIMARY KEY, value INTEGER)       -- next_seq, evicted_total, evicted_unreported

The per-message ``seq`` lives in ``meta`` and is taken in the same transaction as the insert:
a crash can neither reuse a seq nor leave a false gap.

Durability: WAL with ``synchronous=FULL``. Station controllers lose mains power far more often
than they crash; FULL fsyncs the WAL on every commit, so an appended reading survives a power
cut, not only a process kill. The cost is one fsync per reading (one a minute, plus events);
acknowledgements are deleted in batches, one fsync per batch, so draining stays fast.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from agent.disk_reserve import DEFAULT_RESERVE_BYTES, DiskReserve

log = logging.getLogger(__name__)
EVICT_CHUNK_BYTES = 64 * 1024  # per eviction transaction on a full disk: fits the reserve
SCHEMA_VERSION = 1
ROW_OVERHEAD = 48  # bytes accounted per row for SQLite record/index overhead (approximate)

# Default bound: 7 days at the default 60 s telemetry interval, worst case.
#   telemetry payload (measured with every field set): 635 B with 2 clusters, 1859 B with
#   the maximum 16; + topic 42 B + ROW_OVERHEAD 48 B  ->  at most ~1.95 KiB a message.
#   7 d x 24 h x 60 = 10_080 messages x 1.95 KiB ~= 19.2 MiB,
#   + events/broadcast log (a busy station: ~200 a day x 7 x 0.3 KiB ~= 0.4 MiB)
#   ~= 19.6 MiB; rounded up to 32 MiB (slack for SQLite pages and a noisy week):
#   a typical 2-cluster station keeps ~4 weeks.
DEFAULT_MAX_BYTES = 32 * 1024 * 1024

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    seq INTEGER NOT NULL,
    ts INTEGER NOT NULL,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    live_session INTEGER,
    size INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


class QueueError(Exception):
    """The queue cannot store a message (too large, unreadable database)."""


@dataclass(frozen=True, slots=True)
class QueuedMessage:
    id: int
    seq: int
    ts: int
    topic: str
    payload: bytes
    live_session: int | None  # session during which it was stored; None: stored offline


class OfflineQueue:
    """Thread-safe: the sampling thread appends while the link thread peeks and removes."""

    def __init__(
        self,
        path: str | Path,
        max_bytes: int = DEFAULT_MAX_BYTES,
        *,
        synchronous: Literal["FULL", "NORMAL"] = "FULL",  # NORMAL: bulk loads in tests/tools
        reserve_bytes: int = DEFAULT_RESERVE_BYTES,  # 0: no disk reserve (agent/disk_reserve.py)
    ) -> None:
        if max_bytes <= 0:
            raise ValueError("max_bytes must be > 0")
        self.path = Path(path)
        self.max_bytes = self._configured_max = max_bytes
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.reserve = DiskReserve(self.path.with_name(self.path.name + ".reserve"), reserve_bytes)
        if reserve_bytes:
            self.reserve.ensure()
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={synchronous}")
            self._db.execute("PRAGMA wal_autocheckpoint=64")  # WAL (256 KiB) < the disk reserve
            self._db.executescript(_SCHEMA)
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, SCHEMA_VERSION):
                raise QueueError(f"{self.path}: queue schema {version}, expected {SCHEMA_VERSION}")
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            check = self._db.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise QueueError(f"queue {self.path} is damaged: {check}")
            row = self._db.execute("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM messages")
            self._count, self._bytes = row.fetchone()
        except sqlite3.DatabaseError as err:
            if hasattr(self, "_db"):
                self._db.close()
            raise QueueError(f"cannot open queue {self.path}: {err}") from err

    @classmethod
    def open_or_quarantine(
        cls, path: str | Path, max_bytes: int = DEFAULT_MAX_BYTES
    ) -> OfflineQueue:
        """Open the queue; a damaged file is renamed aside (kept for inspection) and replaced,
        so a station keeps reporting instead of refusing to start."""
        try:
            return cls(path, max_bytes)
        except QueueError as err:
            path = Path(path)
            if not path.exists():
                raise
            aside = path.with_name(f"{path.name}.damaged-{int(time.time())}")
            log.error("%s; moved it to %s and starting an empty queue", err, aside)
            for suffix in ("", "-wal", "-shm"):
                src = path.with_name(path.name + suffix)
                if src.exists():
                    os.replace(src, aside.with_name(aside.name + suffix))
            return cls(path, max_bytes)

    # -- counters -------------------------------------------------------------------------
    def _meta(self, key: str) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return int(row[0]) if row else 0

    def _set_meta(self, key: str, value: int) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    @property
    def next_seq(self) -> int:
        with self._lock:
            return self._meta("next_seq")

    def ensure_seq_at_least(self, seq: int) -> None:
        """Raise the next seq to ``seq`` (a floor kept elsewhere survives a deleted queue file)."""
        with self._lock:
            if self._meta("next_seq") < seq:
                self._set_meta("next_seq", seq)

    @property
    def evicted_total(self) -> int:
        with self._lock:
            return self._meta("evicted_total")

    @property
    def evicted_unreported(self) -> int:
        with self._lock:
            return self._meta("evicted_unreported")

    def mark_evictions_reported(self, count: int) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                left = max(0, self._meta("evicted_unreported") - count)
                self._set_meta("evicted_unreported", left)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def __len__(self) -> int:
        return self._count

    @property
    def bytes(self) -> int:
        return self._bytes

    # -- append / peek / remove -----------------------------------------------------------
    def append(
        self, build: Callable[[int], tuple[str, bytes]], ts_ms: int, live_session: int | None
    ) -> QueuedMessage:
        """Store one message; ``build(seq)`` returns (topic, payload) for the seq assigned.

        If ``build`` raises, nothing is stored and the seq is not used. Evicts the oldest
        messages when the bound is exceeded and counts them. A full disk applies the same
        policy: the oldest messages are evicted (counted, reported) to make room; QueueError if
        even that fails (nothing left to evict).
        """
        for attempt in range(3):
            try:
                message = self._append(build, ts_ms, live_session)
            except sqlite3.Error as err:
                if "full" not in str(err) or attempt == 2:
                    raise QueueError(f"cannot store in {self.path}: {err}") from err
                with self._lock:
                    # First fold the WAL back into the database (often enough); then give up
                    # the reserve file so SQLite can write, and evict the oldest messages.
                    if attempt == 0:
                        self._checkpoint()
                        continue
                    self.reserve.release()
                    if not self._evict_for_disk():
                        raise QueueError(f"disk full, nothing to evict in {self.path}") from err
                continue
            if self.max_bytes < self._configured_max and self.reserve.restore_now_and_then():
                self.max_bytes = self._configured_max  # space is back: the configured bound
            return message
        raise AssertionError("unreachable")

    def _checkpoint(self) -> bool:
        try:
            busy = self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        except sqlite3.Error as err:
            log.warning("checkpoint of %s on a full disk failed: %s", self.path, err)
            return False
        return busy == 0

    def _evict_for_disk(self) -> int:
        """Disk full: the disk sets the bound now (90 % of what is queued), and the oldest
        messages above it are evicted and counted as for the configured bound. Evicted in
        chunks, the WAL folded back after each: one big DELETE needs more WAL than the
        released reserve holds (seen with a 16 MB queue)."""
        if not self._count:
            return 0
        self.max_bytes = max(1, int(self._bytes * 0.9))
        total = 0
        while self._bytes > self.max_bytes:
            chunk = min(self._bytes - self.max_bytes, EVICT_CHUNK_BYTES)
            try:
                self._db.execute("BEGIN IMMEDIATE")
                count, freed = self._evict(chunk)
                self._db.execute("COMMIT")
            except sqlite3.Error as err:
                self._rollback()
                log.error("disk full and evicting from %s failed: %s", self.path, err)
                break
            if not count:
                break
            self._checkpoint()  # the freed pages are reused once the WAL is folded back
            self._count -= count
            self._bytes -= freed
            total += count
        if total:
            log.error(
                "disk full: queue %s bounded to %d bytes, evicted the %d oldest messages",
                self.path, self.max_bytes, total,
            )  # fmt: skip
        return total

    def _rollback(self) -> None:
        if self._db.in_transaction:  # SQLite may have rolled back already (SQLITE_FULL)
            self._db.execute("ROLLBACK")

    def _append(
        self, build: Callable[[int], tuple[str, bytes]], ts_ms: int, live_session: int | None
    ) -> QueuedMessage:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                seq = self._meta("next_seq")
                topic, payload = build(seq)
                size = len(payload) + len(topic) + ROW_OVERHEAD
                if size > self.max_bytes:
                    raise QueueError(
                        f"message of {size} B exceeds the queue bound of {self.max_bytes} B"
                    )
                cur = self._db.execute(
                    "INSERT INTO messages(seq, ts, topic, payload, live_session, size)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (seq, ts_ms, topic, payload, live_session, size),
                )
                self._set_meta("next_seq", seq + 1)
                evicted, freed = self._evict(self._bytes + size - self.max_bytes)
                self._db.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise
            self._count += 1 - evicted
            self._bytes += size - freed
            return QueuedMessage(cur.lastrowid or 0, seq, ts_ms, topic, payload, live_session)

    def _evict(self, excess: int) -> tuple[int, int]:
        """Delete the oldest rows until ``excess`` bytes are freed; inside a transaction."""
        if excess <= 0:
            return 0, 0
        freed = count = 0
        last_id = None
        for row_id, size in self._db.execute("SELECT id, size FROM messages ORDER BY id"):
            freed += size
            count += 1
            last_id = row_id
            if freed >= excess:
                break
        self._db.execute("DELETE FROM messages WHERE id <= ?", (last_id,))
        for key in ("evicted_total", "evicted_unreported"):
            self._set_meta(key, self._meta(key) + count)
        return count, freed

    def peek(self, after_id: int = 0, limit: int = 100) -> list[QueuedMessage]:
        """The oldest ``limit`` messages with id > ``after_id``, in send order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, seq, ts, topic, payload, live_session FROM messages"
                " WHERE id > ? ORDER BY id LIMIT ?",
                (after_id, limit),
            ).fetchall()
        return [QueuedMessage(r[0], r[1], r[2], r[3], bytes(r[4]), r[5]) for r in rows]

    def remove(self, ids: Iterable[int]) -> int:
        """Delete acknowledged messages (ids already gone, e.g. evicted, are ignored)."""
        ids = list(ids)
        if not ids:
            return 0
        removed = freed = 0
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for start in range(0, len(ids), 500):  # SQLite caps bound parameters
                    chunk = ids[start : start + 500]
                    marks = ",".join("?" * len(chunk))
                    cur = self._db.execute(
                        f"DELETE FROM messages WHERE id IN ({marks}) RETURNING size", chunk
                    )
                    sizes = [r[0] for r in cur.fetchall()]
                    removed += len(sizes)
                    freed += sum(sizes)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._count -= removed
            self._bytes -= freed
        return removed

    def close(self) -> None:
        with self._lock:
            self._db.close()
