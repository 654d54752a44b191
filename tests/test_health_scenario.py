"""A day of one commune (Phường Thục Phán, 01273) replayed through the health engine.

Station A (cb-01267) has its own agent; B (cb-01282) and C (cb-01705) hang off RS-485 gateway
gw-1; D (cb-01290, another commune) just works. Windows 05:30-06:30 and 17:00-18:30; A is in
maintenance 09:00-10:00. Every station reports each minute unless told otherwise; the engine
ticks each minute. The test asserts exactly the events, their times, A's timeline and the
availability arithmetic for the day.
"""

from __future__ import annotations

from collector.health.availability import availability
from collector.health.config import HealthConfig
from collector.health.engine import HealthEngine
from collector.health.events import Cause, State
from tests.test_health_engine import MIN, K, Sim, kinds, local_ms, make_inventory

A, B, C, D = "cb-01267", "cb-01282", "cb-01705", "cb-01290"
S = 1000
ALL = {A: {}, B: {}, C: {}, D: {}}
NO_A = {B: {}, C: {}, D: {}}


def drop_link(sim: Sim, lost: int, back: int, *, backfill: bool) -> None:
    """A's link drops: Will received at ``lost``; online at ``back``; the readings it took in
    between arrive as backfill (out of order, one duplicated) right after."""
    sim.run(lost - lost % MIN, ALL)
    sim.send(sim.status(A, "offline"), received_ms=lost)
    sim.run(back - back % MIN, NO_A)
    queued = [sim.telemetry(A, t, backfill=True) for t in range(lost - lost % MIN + MIN, back, MIN)]
    sim.send(sim.status(A, "online"), received_ms=back)
    if backfill:
        for message in [*reversed(queued), queued[0]]:
            sim.send(message, received_ms=back + S)


def play_day() -> Sim:
    engine = HealthEngine(make_inventory(maintenance=A), HealthConfig())
    sim = Sim(engine, local_ms("04:00"))
    sim.run("05:39", ALL)
    sim.run("05:59", {**NO_A, A: {"rms": -70.0}})  # A's audio chain quiet in the window
    sim.run("06:59", ALL)
    start = local_ms("07:00")  # mains lost: the 07:00 reading is on battery

    def mains_lost(now: int) -> dict | None:  # battery drains; flat after 07:41
        k = (now - start) // MIN
        return None if k > 41 else {"battery_v": 12.6 - 0.05 * k}

    sim.run("08:29", {**NO_A, A: mains_lost})
    sim.send(sim.status(A, "online"), received_ms=local_ms("08:29") + 30 * S)  # power back
    sim.run("09:10", ALL)
    drop_link(sim, local_ms("09:10") + 30 * S, local_ms("09:40") + 30 * S, backfill=False)
    sim.run("11:00", ALL)  # (the technician switched A off during the maintenance)
    sim.events.extend(engine.upstream_down("gw-1", local_ms("11:00") + 30 * S))
    sim.run("11:30", {A: {}, D: {}})
    sim.events.extend(engine.upstream_up("gw-1", local_ms("11:30")))
    for k in range(5):  # a flapping link: 2 min drops every 10 min
        t = local_ms("13:05") + k * 10 * MIN
        drop_link(sim, t + 5 * S, t + 2 * MIN + 5 * S, backfill=True)
    sim.run("19:00", ALL)
    sim.run("19:15", {**NO_A, A: {"rms": -15.0}})  # music outside every window
    drop_link(sim, local_ms("20:00") + 30 * S, local_ms("21:00") + 10 * S, backfill=True)
    sim.run(local_ms("00:00", day=28), ALL)
    return sim


def test_a_day_of_one_commune():
    sim = play_day()
    t = local_ms
    flap = [t("13:05") + k * 10 * MIN + 5 * S for k in range(3)]
    assert kinds(sim.events) == [
        (K.INCIDENT_OPENED, A, t("05:45")),  # silent 5 min in the window
        (K.INCIDENT_CLOSED, A, t("06:00")),
        (K.BATTERY_WARNING, A, t("07:12")),  # 30 min left by the voltage trend
        (K.INCIDENT_OPENED, A, t("07:42")),  # battery ran flat
        (K.INCIDENT_CLOSED, A, t("08:29") + 30 * S),
        (K.INCIDENT_OPENED, A, t("09:10") + 30 * S),  # in maintenance: not paged
        (K.INCIDENT_CLOSED, A, t("09:40") + 30 * S),
        (K.UPSTREAM_DOWN, "gw-1", t("11:00") + 30 * S),
        (K.INCIDENT_OPENED, B, t("11:01")),
        (K.INCIDENT_OPENED, C, t("11:01")),
        (K.UPSTREAM_RESTORED, "gw-1", t("11:31")),
        (K.INCIDENT_CLOSED, B, t("11:31")),
        (K.INCIDENT_CLOSED, C, t("11:31")),
        (K.INCIDENT_OPENED, A, flap[0]),
        (K.INCIDENT_RECLASSIFIED, A, flap[0] + 2 * MIN),
        (K.INCIDENT_CLOSED, A, flap[0] + 2 * MIN),
        (K.INCIDENT_OPENED, A, flap[1]),
        (K.INCIDENT_RECLASSIFIED, A, flap[1] + 2 * MIN),
        (K.INCIDENT_CLOSED, A, flap[1] + 2 * MIN),
        (K.FLAP_SUMMARY, A, flap[2]),  # then quiet: no pair per flap
        (K.UNSCHEDULED_BROADCAST, A, t("19:11")),  # loud from 19:01
        (K.INCIDENT_OPENED, A, t("20:00") + 30 * S),
        (K.INCIDENT_RECLASSIFIED, A, t("21:00") + 10 * S),  # link down, station was on air
        (K.INCIDENT_CLOSED, A, t("21:00") + 10 * S),
    ]
    ev = sim.events
    causes = [e.incident.cause for e in ev if e.kind is K.INCIDENT_OPENED]
    assert causes == [
        Cause.AUDIO_CHAIN,
        Cause.POWER,
        Cause.UNKNOWN,
        Cause.UPSTREAM,
        Cause.UPSTREAM,
        Cause.UNKNOWN,
        Cause.UNKNOWN,
        Cause.UNKNOWN,
    ]
    assert [e.incident.maintenance for e in ev[5:7]] == [True, True]
    assert all(e.details["held"] for e in ev[8:10])
    last = ev[-1].incident  # closed with the corrected state and cause
    assert (last.state, last.cause, last.closed_ms) == (
        State.LINK_DOWN,
        Cause.NETWORK,
        t("21:00") + 10 * S,
    )
    assert ev[19].details == {"count": 3, "window_min": 60, "maintenance": False}


def test_the_day_in_numbers():
    sim = play_day()
    t = local_ms
    day = availability(sim.engine.transitions[A], t("04:00"), t("00:00", day=28))
    expected = {
        State.UNKNOWN: MIN,  # before the first report at 04:01
        State.SILENT: 15 * MIN,
        State.ON_BATTERY: 23 * MIN,
        State.BATTERY_LOW: 19 * MIN + 30 * S,  # and 30 s after the reboot, before mains showed
        State.DOWN: 47 * MIN + 30 * S,
        State.MAINTENANCE: 60 * MIN,
        State.LINK_DOWN: 5 * 2 * MIN + 59 * MIN + 40 * S,
    }
    expected[State.OPERATING] = 20 * 60 * MIN - sum(expected.values())
    assert day.ms == expected
    snap = sim.engine.compliance
    assert snap(t("07:50")).communes["01273"].failing == {A: State.DOWN}
    assert snap(t("07:50")).percent == 50.0
    assert snap(t("11:10")).communes["01273"].failing == {B: State.DOWN, C: State.DOWN}
    assert snap(t("09:30")).meets_goal and snap(t("09:30")).in_maintenance == {"01273": [A]}
    assert snap(t("20:30")).meets_goal  # corrected history: on air while unreachable
    assert sim.engine.open_incidents() == []
