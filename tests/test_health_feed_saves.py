"""HealthFeed saves the engine snapshot at the tick after any change of state, and otherwise
only every ``quiet_save_every_ms``: a quiet fleet does not pay the full snapshot every tick."""

from __future__ import annotations

from pathlib import Path

from collector.health.engine import HealthEngine
from collector.health.store import HealthStore
from collector.ingest import health_feed
from collector.ingest.health_feed import HealthFeed
from collector.ingest.validate import Accepted
from collector.inventory import load_inventory
from loaxa.payloads import Telemetry
from loaxa.topics import Kind

INVENTORY = Path(__file__).resolve().parents[1] / "config" / "inventory.example.toml"
T0 = 1_790_000_000_000


class CountingStore(HealthStore):
    saves: list[int]

    def save(self, snapshot, now_ms: int) -> None:
        self.saves.append(now_ms)
        super().save(snapshot, now_ms)


class Lines:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def append(self, lines) -> None:
        self.lines.extend(lines)


def reading(seq: int, ts: int) -> Accepted:
    p = Telemetry(station="cb-01267", session=1, seq=seq, ts=ts, agent_uptime_s=seq)
    return Accepted("cao-bang", "01273", "cb-01267", Kind.TELEMETRY, p, ts)


def test_saves_after_changes_and_every_30_s_when_quiet(tmp_path, monkeypatch):
    clock = [T0]
    monkeypatch.setattr(health_feed, "now_ms", lambda: clock[0])
    store = CountingStore(tmp_path / "state.sqlite")
    store.saves = []
    feed = HealthFeed(HealthEngine(load_inventory(INVENTORY)), store, Lines(), None)

    feed.tick()  # the first tick always saves
    assert store.saves == [T0]
    feed.observe([reading(1, T0 + 1000)])  # UNKNOWN -> OPERATING: a transition
    clock[0] = T0 + 5000
    feed.tick()
    assert store.saves == [T0, T0 + 5000]
    for k in range(2, 8):  # same state: nothing to show, no save until 30 s passed
        feed.observe([reading(k, clock[0])])
        clock[0] += 5000
        feed.tick()
    assert store.saves == [T0, T0 + 5000, T0 + 35_000]
    store.close()
    reloaded = HealthStore(tmp_path / "state.sqlite").load()
    assert reloaded is not None and reloaded["stations"]["cb-01267"]["state"] == "operating"


def test_midnight_checkpoint_repeats_each_seen_station_state(tmp_path, monkeypatch):
    """A station down since before the month still has a state point at the month's start."""
    clock = [T0]
    monkeypatch.setattr(health_feed, "now_ms", lambda: clock[0])
    lines = Lines()
    feed = HealthFeed(HealthEngine(load_inventory(INVENTORY)), HealthStore(tmp_path / "s"), lines,
                      None)  # fmt: skip
    feed.observe([reading(1, T0)])
    clock[0] = T0 + 10 * 60_000  # nothing since: the station went down
    feed.tick()
    midnight = T0 + 3_600_000
    lines.lines.clear()
    assert feed.checkpoint(midnight) == 1  # only the station ever seen
    (line,) = lines.lines
    assert line.startswith("station_state,") and "station=cb-01267" in line
    assert "state=down" in line and line.endswith(f" {midnight}")
    assert feed.checkpoint(T0) == 0  # a real transition is already at that instant


def test_a_costly_snapshot_is_spaced_out_so_ingest_is_not_held_off(tmp_path, monkeypatch):
    """A save that took d ms is not repeated within SAVE_SPACING x d, even after changes."""
    clock, perf = [T0], [0.0]
    monkeypatch.setattr(health_feed, "now_ms", lambda: clock[0])

    def slow_perf_ms() -> float:  # every save appears to take 1 s (a big fleet's snapshot)
        perf[0] += 1000.0
        return perf[0]

    monkeypatch.setattr(health_feed, "perf_ms", slow_perf_ms)
    store = CountingStore(tmp_path / "state.sqlite")
    store.saves = []
    feed = HealthFeed(HealthEngine(load_inventory(INVENTORY)), store, Lines(), None)
    feed.tick()
    assert store.saves == [T0]
    feed.observe([reading(1, T0 + 1000)])  # UNKNOWN -> OPERATING: a change to save
    for k in range(2, 7):  # ticks 5 s apart
        clock[0] += 5000
        feed.tick()
        feed.observe([reading(k, clock[0])])
    # Without the spacing the change is saved at T0 + 5 s; with a 1 s snapshot, not before 10 s.
    assert store.saves == [T0, T0 + health_feed.SAVE_SPACING * 1000]
    store.close()
