"""The engine's per-message shortcut (only the touched station's upstream re-checked, DOWN
stations waiting for damping kept in an index) decides exactly what the full scan decided.

Reference: the same engine whose ``_after`` always scans every station and upstream (the code
before the shortcut). Random streams, including gateway reports, must give identical events
and timelines.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.health.config import HealthConfig
from collector.health.engine import HealthEngine
from loaxa.payloads import EventCode
from tests.test_health_engine import MIN, Sim, local_ms, make_inventory

STATIONS = ["cb-01267", "cb-01282", "cb-01705", "cb-01290"]
ACTIONS = st.sampled_from(["normal", "quiet", "offline", "online", "late", "power", "gw", "tick"])
STEP = st.tuples(st.sampled_from(STATIONS), ACTIONS, st.integers(0, 12))


class FullScanEngine(HealthEngine):
    def _after(self, now, events, touched=None) -> None:
        super()._after(now, events, None)


def play(engine: HealthEngine, steps) -> Sim:
    sim = Sim(engine, local_ms("04:00"))
    for sid, action, wait in steps:
        if action == "normal":
            sim.send(sim.telemetry(sid, sim.now))
        elif action == "quiet":
            sim.send(sim.telemetry(sid, sim.now, rms=-80.0))
        elif action in ("offline", "online"):
            sim.send(sim.status(sid, action))
        elif action == "power":
            sim.send(sim.event(sid, EventCode.POWER_LOST, sim.now))
        elif action == "late":
            sim.send(sim.telemetry(sid, sim.now - wait * MIN, backfill=True))
        elif action == "gw":
            sim.events.extend(sim.engine.upstream_down("gw-1", sim.now))
        # Messages only (no ticks) for a while: damping must still expire on the next message.
        sim.now += wait * MIN // 2
        if action == "tick":
            sim.run(sim.now + wait * MIN)
    sim.events.extend(sim.engine.upstream_up("gw-1", sim.now))
    sim.run(sim.now + 20 * MIN, {sid: {} for sid in STATIONS})
    return sim


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(STEP, max_size=40))
def test_indexed_after_decides_like_the_full_scan(steps):
    fast = play(HealthEngine(make_inventory(), HealthConfig()), steps)
    full = play(FullScanEngine(make_inventory(), HealthConfig()), steps)
    assert fast.events == full.events
    assert fast.engine.transitions == full.engine.transitions
    assert fast.engine.open_incidents() == full.engine.open_incidents()


def test_restore_rebuilds_the_index():
    """A station restored DOWN and waiting for damping opens its incident on the next message
    of another station, as the full scan would."""
    inv = make_inventory()
    sim = Sim(HealthEngine(inv, HealthConfig()), local_ms("07:00"))
    sim.run("07:10", {"cb-01267": {}, "cb-01705": {}})
    sim.send(sim.status("cb-01267", "offline"))  # DOWN now, incident after damping
    assert not sim.engine.open_incidents()
    restored = Sim(HealthEngine(inv, HealthConfig()), sim.now)
    restored.seq, restored.session = dict(sim.seq), dict(sim.session)  # no duplicate keys
    restored.send(restored.telemetry("cb-01705", sim.now - MIN // 2))  # index built before
    restored.engine.restore(sim.engine.snapshot())
    later = sim.now + 5 * MIN
    restored.now = later
    restored.send(restored.telemetry("cb-01705", later))
    assert [i.station for i in restored.engine.open_incidents()] == ["cb-01267"]
