"""Outages: backfill reclassification, flapping, upstream failures, maintenance, restarts."""

from __future__ import annotations

import json
from dataclasses import replace

from collector.health.availability import availability
from collector.health.config import HealthConfig
from collector.health.engine import HealthEngine
from collector.health.events import Cause, State
from tests.test_health_engine import MIN, K, Sim, kinds, local_ms, make_inventory, new_sim

A, B, C, D = "cb-01267", "cb-01282", "cb-01705", "cb-01290"


def _link_lost_then_backfill(sim: Sim, backfill_until: str) -> None:
    """Live until 08:00; Will at 08:01:30; the agent keeps measuring into its queue until
    ``backfill_until`` (then loses power); back at 09:00:10 with a new session and backfill."""
    sim.run("08:00", {A: {}})
    sim.send(sim.status(A, "offline"), received_ms=local_ms("08:01") + 30_000)
    queued = []
    t = local_ms("08:01")
    while t <= local_ms(backfill_until):
        queued.append(sim.telemetry(A, t, backfill=True, battery_v=12.4))
        t += MIN
    sim.run("09:00")
    back = local_ms("09:00") + 10_000
    sim.send(sim.status(A, "online"), received_ms=back)
    for message in reversed(queued):  # out of order, and one duplicated
        sim.send(message, received_ms=back + 1000)
    sim.send(queued[0], received_ms=back + 2000)
    sim.run("09:10", {A: {}})


def test_backfill_shows_station_on_air_reclassifies_incident_as_link_down():
    sim = new_sim()
    _link_lost_then_backfill(sim, "08:59")
    lost, back = local_ms("08:01") + 30_000, local_ms("09:00") + 10_000
    assert kinds(sim.events) == [
        (K.INCIDENT_OPENED, A, lost),
        (K.INCIDENT_RECLASSIFIED, A, back),
        (K.INCIDENT_CLOSED, A, back),
    ]
    fixed = sim.events[1].incident
    assert (fixed.state, fixed.cause) == (State.LINK_DOWN, Cause.NETWORK)
    assert sim.events[2].incident == replace(fixed, closed_ms=back)
    assert sim.events[1].details["message"] == "link restored, station was on air"
    assert fixed.id == sim.events[0].incident.id
    timeline = [(t.state, t.ts_ms) for t in sim.engine.transitions[A]]
    assert timeline == [
        (State.OPERATING, local_ms("07:01")),
        (State.LINK_DOWN, lost),
        (State.OPERATING, back),
    ]
    day = availability(sim.engine.transitions[A], local_ms("07:00"), local_ms("09:10"))
    assert day.unknown_ms == MIN and day.operating_ms == 129 * MIN
    assert sim.engine.counters["duplicate"] == 1


def test_backfill_moves_outage_start_to_when_battery_ran_flat():
    sim = new_sim()
    _link_lost_then_backfill(sim, "08:20")
    lost, back = local_ms("08:01") + 30_000, local_ms("09:00") + 10_000
    assert kinds(sim.events) == [
        (K.INCIDENT_OPENED, A, lost),
        (K.INCIDENT_RECLASSIFIED, A, back),
        (K.INCIDENT_CLOSED, A, back),
    ]
    fixed = sim.events[1].incident
    assert (fixed.opened_ms, fixed.cause) == (local_ms("08:21"), Cause.POWER)
    assert sim.events[2].details["duration_min"] == 39.2  # 08:21:00 -> 09:00:10
    timeline = [(t.state, t.ts_ms) for t in sim.engine.transitions[A]]
    assert timeline == [
        (State.OPERATING, local_ms("07:01")),
        (State.LINK_DOWN, lost),
        (State.DOWN, local_ms("08:21")),
        (State.OPERATING, back),
    ]


def test_flapping_link_gives_one_summary_instead_of_alert_pairs():
    sim = new_sim()
    sim.run("07:05", {A: {}})
    for _ in range(5):  # drops of 2 min every 10 min
        sim.send(sim.status(A, "offline"), received_ms=sim.now + 5000)
        sim.run(sim.now + 2 * MIN)
        sim.send(sim.status(A, "online"))
        sim.run(sim.now + 8 * MIN, {A: {}})
    drops = [local_ms("07:05") + 5000 + k * 10 * MIN for k in range(5)]
    assert kinds(sim.events) == [
        (K.INCIDENT_OPENED, A, drops[0]),
        (K.INCIDENT_CLOSED, A, drops[0] + 2 * MIN - 5000),
        (K.INCIDENT_OPENED, A, drops[1]),
        (K.INCIDENT_CLOSED, A, drops[1] + 2 * MIN - 5000),
        (K.FLAP_SUMMARY, A, drops[2]),
    ]
    assert sim.events[-1].details == {"count": 3, "window_min": 60, "maintenance": False}


def test_gateway_stations_down_together_blame_the_upstream():
    sim = new_sim()
    sim.run("10:00", {B: {}, C: {}, A: {}})
    sim.run("10:30", {A: {}})
    sim.run("10:40", {B: {}, C: {}, A: {}})
    assert kinds(sim.events) == [
        (K.UPSTREAM_DOWN, "gw-1", local_ms("10:01")),
        (K.INCIDENT_OPENED, B, local_ms("10:01")),
        (K.INCIDENT_OPENED, C, local_ms("10:01")),
        (K.UPSTREAM_RESTORED, "gw-1", local_ms("10:31")),
        (K.INCIDENT_CLOSED, B, local_ms("10:31")),
        (K.INCIDENT_CLOSED, C, local_ms("10:31")),
    ]
    for event in sim.events[1:3]:
        assert event.incident.cause is Cause.UPSTREAM and event.incident.upstream == "gw-1"
        assert event.details["held"] is True


def test_gateway_reporting_itself_down():
    sim = new_sim()
    sim.run("10:00", {B: {}, C: {}})
    sim.events.extend(sim.engine.upstream_down("gw-1", local_ms("10:00") + 30_000))
    sim.run("10:10")
    sim.events.extend(sim.engine.upstream_up("gw-1", sim.now))
    assert kinds(sim.events)[:3] == [
        (K.UPSTREAM_DOWN, "gw-1", local_ms("10:00") + 30_000),
        (K.INCIDENT_OPENED, B, local_ms("10:01")),
        (K.INCIDENT_OPENED, C, local_ms("10:01")),
    ]
    assert sim.events[0].details["detected_by"] == "reported"
    # still down by its stations, so the owner's "up" alone restores nothing yet
    assert kinds(sim.events)[3:] == []


def test_maintenance_is_reported_separately_and_not_paged():
    sim = new_sim("08:50")
    sim.run("09:05", {D: {}})
    sim.run("09:50")
    sim.run("10:10", {D: {}})
    assert [e.kind for e in sim.events] == [K.INCIDENT_OPENED, K.INCIDENT_CLOSED]
    assert all(e.incident.maintenance and e.details["maintenance"] for e in sim.events)
    timeline = [(t.state, t.ts_ms) for t in sim.engine.transitions[D]]
    assert timeline == [
        (State.OPERATING, local_ms("08:51")),
        (State.MAINTENANCE, local_ms("09:00")),
        (State.OPERATING, local_ms("10:00")),
    ]
    snap = sim.engine.compliance(local_ms("09:30"))
    assert snap.communes["01290"].operating is None and snap.in_maintenance == {"01290": [D]}


def test_restart_neither_forgets_nor_reopens_incidents():
    sim = new_sim()
    sim.run("07:10", {A: {}})
    sim.run("07:20")
    (opened,) = sim.events
    saved = json.loads(json.dumps(sim.engine.snapshot()))
    fresh = HealthEngine(make_inventory(), HealthConfig())
    fresh.restore(saved)
    sim.engine, sim.events = fresh, []
    sim.run("07:30")
    assert sim.events == []
    sim.run("07:40", {A: {}})
    (closed,) = sim.events
    assert (closed.kind, closed.incident.id) == (K.INCIDENT_CLOSED, opened.incident.id)


def test_silent_then_unreachable_then_back_closes_the_silence_incident():
    sim = new_sim("17:00")
    sim.run("17:10", {A: {}})
    sim.run("17:20", {A: {"rms": -70.0}})  # SILENT from 17:16
    sim.run("17:40")  # then nothing at all
    sim.run("17:50", {A: {}})
    assert kinds(sim.events) == [
        (K.INCIDENT_OPENED, A, local_ms("17:16")),
        (K.INCIDENT_CLOSED, A, local_ms("17:41")),
    ]
    assert sim.events[0].incident.state is State.SILENT
    states = [t.state for t in sim.engine.transitions[A]]
    assert states == [State.OPERATING, State.SILENT, State.DOWN, State.OPERATING]


def test_silence_right_after_an_outage_closes_the_outage_first():
    sim = new_sim("17:00")
    sim.run("17:05", {A: {}})
    sim.run("17:20")  # DOWN from 17:06
    sim.run("17:30", {A: {"rms": -70.0}})  # back at 17:21, quiet: SILENT at 17:26
    assert kinds(sim.events) == [
        (K.INCIDENT_OPENED, A, local_ms("17:06")),
        (K.INCIDENT_CLOSED, A, local_ms("17:21")),
        (K.INCIDENT_OPENED, A, local_ms("17:26")),
    ]
    assert [e.incident.state for e in sim.events] == [State.DOWN, State.DOWN, State.SILENT]


def test_stations_failing_hours_apart_do_not_blame_the_upstream():
    sim = new_sim()
    sim.run("08:00", {B: {}, C: {}})
    sim.run("10:00", {C: {}})  # B down from 08:01, C fine
    sim.run("10:10")  # C down from 10:01: both down, but not at once
    assert [e.kind for e in sim.events] == [K.INCIDENT_OPENED, K.INCIDENT_OPENED]
    assert [e.incident.cause for e in sim.events] == [Cause.UNKNOWN, Cause.UNKNOWN]
