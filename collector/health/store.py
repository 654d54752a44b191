"""SQLite persistence of the health engine, so a restart neither forgets nor re-opens incidents.

Schema version 1 (``PRAGMA user_version``)::

    stations(station PK, state, since_ms, session, runtime JSON)   -- current condition, memory
    upstreams(upstream PK, reported_ms, inferred_ms)
    incidents(id PK, station, commune, state, cause, opened_ms, closed_ms, upstream,
              maintenance, updated_ms)                              -- open and closed
    meta(key PK, value)                                             -- counters, last row, saved_ms

``save(engine.snapshot(), now)`` writes everything in one transaction (WAL, so a crash leaves
the previous save whole); ``load()`` returns the snapshot for ``engine.restore()``.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from collector.health.events import HealthEvent, Incident
from collector.health.runtime import incident_from_dict, incident_to_dict
from collector.health.snapshots import SNAPSHOT_VERSION

STORE_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS stations (
    station TEXT PRIMARY KEY, state TEXT NOT NULL, since_ms INTEGER, session INTEGER,
    runtime TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS upstreams (
    upstream TEXT PRIMARY KEY, reported_ms INTEGER, inferred_ms INTEGER);
CREATE TABLE IF NOT EXISTS incidents (
    id TEXT PRIMARY KEY, station TEXT NOT NULL, commune TEXT NOT NULL, state TEXT NOT NULL,
    cause TEXT NOT NULL, opened_ms INTEGER NOT NULL, closed_ms INTEGER, upstream TEXT,
    maintenance INTEGER NOT NULL, updated_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS incidents_open ON incidents (closed_ms);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class StoreError(RuntimeError):
    """The state database cannot be opened, read or written."""


class HealthStore:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        except sqlite3.Error as err:
            raise StoreError(f"{self.path}: cannot open state database: {err}") from err
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, STORE_VERSION):
                raise StoreError(f"{self.path}: state database version {version}, expected 1")
            self._db.executescript(_SCHEMA)
            self._db.execute(f"PRAGMA user_version={STORE_VERSION}")
        except (sqlite3.Error, StoreError) as err:
            self._db.close()
            if isinstance(err, StoreError):
                raise
            raise StoreError(f"{self.path}: cannot open state database: {err}") from err

    def close(self) -> None:
        self._db.close()

    def save(self, snapshot: dict[str, Any], now_ms: int) -> None:
        stations = [
            (sid, rt["state"], rt["since_ms"], rt["session"], json.dumps(rt))
            for sid, rt in snapshot["stations"].items()
        ]
        ups = [(u, d["reported_ms"], d["inferred_ms"]) for u, d in snapshot["upstreams"].items()]
        meta = {
            "counters": json.dumps(snapshot["counters"]),
            "last_rows": json.dumps(snapshot["last_rows"]),
            "saved_ms": str(now_ms),
        }
        open_incidents = [
            incident_from_dict(rt["incident"])
            for rt in snapshot["stations"].values()
            if rt["incident"] is not None
        ]
        with self._transaction() as db:
            db.execute("DELETE FROM stations")
            db.executemany("INSERT INTO stations VALUES (?, ?, ?, ?, ?)", stations)
            db.execute("DELETE FROM upstreams")
            db.executemany("INSERT INTO upstreams VALUES (?, ?, ?)", ups)
            db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", meta.items())
            self._upsert(db, open_incidents, now_ms)

    def load(self) -> dict[str, Any] | None:
        """The last saved snapshot, or None for a new database."""
        with self._transaction() as db:
            rows = db.execute("SELECT station, runtime FROM stations").fetchall()
            meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
            ups = db.execute("SELECT upstream, reported_ms, inferred_ms FROM upstreams").fetchall()
        if "saved_ms" not in meta:
            return None
        return {
            "version": SNAPSHOT_VERSION,
            "stations": {sid: json.loads(runtime) for sid, runtime in rows},
            "upstreams": {u: {"reported_ms": r, "inferred_ms": i} for u, r, i in ups},
            "last_rows": json.loads(meta["last_rows"]),
            "counters": json.loads(meta["counters"]),
        }

    def record_events(self, events: Iterable[HealthEvent], now_ms: int) -> None:
        """Keep the incident history: every opened, corrected and closed incident."""
        incidents = [e.incident for e in events if e.incident is not None]
        with self._transaction() as db:
            self._upsert(db, incidents, now_ms)

    def incidents(self, open_only: bool = False) -> list[Incident]:
        where = " WHERE closed_ms IS NULL" if open_only else ""
        with self._transaction() as db:
            rows = db.execute(
                "SELECT id, station, commune, state, cause, opened_ms, closed_ms, upstream,"
                f" maintenance FROM incidents{where} ORDER BY opened_ms, id"
            ).fetchall()
        keys = ("id", "station", "commune", "state", "cause", "opened_ms", "closed_ms", "upstream")
        return [
            incident_from_dict(
                {**dict(zip(keys, row[:8], strict=True)), "maintenance": bool(row[8])}
            )
            for row in rows
        ]

    @staticmethod
    def _upsert(db: sqlite3.Connection, incidents: list[Incident], now_ms: int) -> None:
        rows = []
        for inc in incidents:
            d = incident_to_dict(inc)
            rows.append(
                (
                    *(d[k] for k in ("id", "station", "commune")),
                    inc.state.value,
                    inc.cause.value,
                    inc.opened_ms,
                    inc.closed_ms,
                    inc.upstream,
                    int(inc.maintenance),
                    now_ms,
                )
            )
        db.executemany("INSERT OR REPLACE INTO incidents VALUES (?,?,?,?,?,?,?,?,?,?)", rows)

    def _transaction(self) -> _Transaction:
        return _Transaction(self)


class _Transaction:
    """BEGIN/COMMIT under the store's lock; sqlite3 errors become StoreError."""

    def __init__(self, store: HealthStore) -> None:
        self.store = store

    def __enter__(self) -> sqlite3.Connection:
        self.store._lock.acquire()
        try:
            self.store._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as err:
            self.store._lock.release()
            raise StoreError(f"{self.store.path}: {err}") from err
        return self.store._db

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        try:
            self.store._db.execute("ROLLBACK" if exc is not None else "COMMIT")
        finally:
            self.store._lock.release()
        if isinstance(exc, sqlite3.Error):
            raise StoreError(f"{self.store.path}: {exc}") from exc
