"""Random message streams: the engine never raises and keeps its invariants.

Invariants: each station's timeline is strictly ordered in time; every incident opened is
closed exactly once, with the same id, no earlier than it opened, after the stations come back.
"""

from __future__ import annotations

from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.health.events import HealthEventKind as K
from loaxa.payloads import EventCode
from tests.test_health_engine import MIN, new_sim

STATIONS = ["cb-01267", "cb-01282", "cb-01705", "cb-01290"]
ACTIONS = st.sampled_from(
    ["normal", "quiet", "battery", "silence", "offline", "online", "late", "power", "amp"]
)
STEP = st.tuples(st.sampled_from(STATIONS), ACTIONS, st.integers(0, 40))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(STEP, max_size=40), st.booleans())
def test_random_streams_keep_invariants(steps, gateway_reports):
    sim = new_sim("04:00")
    sent_late: dict[str, int] = {}
    for sid, action, wait in steps:
        if action == "normal":
            sim.send(sim.telemetry(sid, sim.now))
        elif action == "quiet":
            sim.send(sim.telemetry(sid, sim.now, rms=-80.0))
        elif action == "battery":
            sim.send(sim.telemetry(sid, sim.now, battery_v=12.0 - wait * 0.05))
        elif action in ("offline", "online"):
            sim.send(sim.status(sid, action))
        elif action == "power":
            sim.send(sim.event(sid, EventCode.POWER_LOST, sim.now))
        elif action == "amp":
            sim.send(sim.event(sid, EventCode.AMP_FAULT, sim.now))
        elif action == "late":
            sent_late[sid] = sent_late.get(sid, 0) + 1
            sim.send(sim.telemetry(sid, sim.now - wait * MIN, backfill=True))
        if gateway_reports and action == "silence":
            sim.events.extend(sim.engine.upstream_down("gw-1", sim.now))
        sim.run(sim.now + wait * MIN)
    sim.events.extend(sim.engine.upstream_up("gw-1", sim.now))
    for sid in STATIONS:
        sim.send(sim.status(sid, "online"))
    sim.run(sim.now + 30 * MIN, {sid: {} for sid in STATIONS})

    for timeline in sim.engine.transitions.values():
        times = [t.ts_ms for t in timeline]
        assert times == sorted(set(times))
    opened = Counter(e.incident.id for e in sim.events if e.kind is K.INCIDENT_OPENED)
    closed = Counter(e.incident.id for e in sim.events if e.kind is K.INCIDENT_CLOSED)
    assert set(opened.values()) <= {1} and opened == closed
    for e in sim.events:
        if e.kind is K.INCIDENT_CLOSED:
            assert e.incident.closed_ms >= e.incident.opened_ms
    assert sim.engine.open_incidents() == []
