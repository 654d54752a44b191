"""SQLite state store: a restart restores memory and incidents; history of incidents kept."""

from __future__ import annotations

import pytest

from collector.health.config import HealthConfig
from collector.health.engine import HealthEngine
from collector.health.events import Cause, State
from collector.health.store import HealthStore, StoreError
from tests.test_health_engine import K, kinds, local_ms, make_inventory, new_sim

A = "cb-01267"


def test_restart_from_sqlite_keeps_open_incident_and_sessions(tmp_path):
    sim = new_sim()
    sim.run("07:10", {A: {}})
    sim.run("07:20")
    (opened,) = sim.events
    store = HealthStore(tmp_path / "health.sqlite")
    store.record_events(sim.events, sim.now)
    store.save(sim.engine.snapshot(), sim.now)
    store.close()

    store = HealthStore(tmp_path / "health.sqlite")  # the restarted daemon
    fresh = HealthEngine(make_inventory(), HealthConfig())
    saved = store.load()
    assert saved is not None
    fresh.restore(saved)
    assert fresh.open_incidents() == [opened.incident]
    assert fresh.stations[A].session == 1 and fresh.stations[A].state is State.DOWN
    sim.engine, sim.events = fresh, []
    sim.run("07:30")
    assert sim.events == []  # not re-opened
    # a message the old process had already seen is still a duplicate after the restart
    replay = sim.telemetry(A, local_ms("07:05")).model_copy(update={"seq": 5})
    assert sim.send(replay) == []
    assert fresh.counters["duplicate"] == 1
    sim.run("07:40", {A: {}})
    assert kinds(sim.events) == [(K.INCIDENT_CLOSED, A, local_ms("07:31"))]
    store.record_events(sim.events, sim.now)
    (row,) = store.incidents()
    assert (row.id, row.cause, row.closed_ms) == (
        opened.incident.id,
        Cause.UNKNOWN,
        local_ms("07:31"),
    )
    assert store.incidents(open_only=True) == []
    store.close()


def test_new_database_has_no_snapshot(tmp_path):
    store = HealthStore(tmp_path / "new.sqlite")
    assert store.load() is None
    store.close()


def test_unusable_files_raise_store_error(tmp_path):
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="cannot open state database"):
        HealthStore(junk)
    with pytest.raises(StoreError):
        HealthStore(tmp_path / "missing-dir" / "x.sqlite")
