"""HealthEngine unit cases: one rule each, on a small inventory, the clock passed in.

``Sim`` (also used by the scenario test) plays agents: it numbers messages like a real agent
(session, seq), and advances the clock minute by minute calling ``tick``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from collector.health.config import HealthConfig
from collector.health.engine import HealthEngine
from collector.health.events import Cause, HealthEvent, HealthEventKind, State
from collector.health.schedules import window_at
from collector.inventory import Inventory, parse_inventory
from loaxa.payloads import Audio, Event, EventCode, Power, Status, Telemetry

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
MIN = 60_000
K = HealthEventKind
Spec = dict | Callable[[int], dict | None]


def local_ms(hhmm: str, day: int = 27) -> int:
    h, m = map(int, hhmm.split(":"))
    return int(datetime(2026, 11, day, h, m, tzinfo=TZ).timestamp() * 1000)


def make_inventory(maintenance: str = "cb-01290", **defaults: object) -> Inventory:
    """Commune 01273 with agent station A (cb-01267) and gateway stations B, C (gw-1)."""

    def station(sid: str, **extra: object) -> dict:
        return {
            "id": sid,
            "commune": "01273",
            "name": sid,
            "lat": 22.66,
            "lon": 106.26,
            "position": "demo",
            **extra,
        }

    return parse_inventory(
        {
            "province": {"code": "04", "slug": "cao-bang", "name": "Cao Bằng", "department": "Sở"},
            "defaults": defaults,
            "schedules": [{"id": "daily", "windows": ["05:30-06:30", "17:00-18:30"]}],
            "upstreams": [{"id": "gw-1", "kind": "serial_gateway", "name": "Gateway"}],
            "communes": [
                {"code": "01273", "name": "Phường Thục Phán", "schedule": "daily"},
                {"code": "01290", "name": "Xã Bảo Lâm", "schedule": "daily"},
            ],
            "stations": [
                station("cb-01267"),
                station("cb-01282", upstream="gw-1", address=1),
                station("cb-01705", upstream="gw-1", address=2),
                station("cb-01290", commune="01290"),
            ],
            "maintenance": [
                {
                    "station": maintenance,
                    "start": "2026-11-27T09:00:00",
                    "end": "2026-11-27T10:00:00",
                }
            ],
        }
    )


class Sim:
    """Agents and a clock. ``level`` / ``battery`` per station decide what telemetry says."""

    def __init__(self, engine: HealthEngine, start_ms: int) -> None:
        self.engine = engine
        self.now = start_ms
        self.seq: dict[str, int] = {}
        self.session: dict[str, int] = {}
        self.events: list[HealthEvent] = []

    def _next(self, sid: str) -> tuple[int, int]:
        self.seq[sid] = self.seq.get(sid, 0) + 1
        return self.session.setdefault(sid, 1), self.seq[sid]

    def telemetry(
        self,
        sid: str,
        ts: int,
        rms: float | None = None,
        battery_v: float | None = None,
        backfill: bool = False,
    ) -> Telemetry:
        session, seq = self._next(sid)
        if rms is None:  # a normal station: programs inside the windows, quiet outside
            on_air = window_at(self.engine.inventory.schedule_for(sid), ts, TZ) is not None
            rms = -20.0 if on_air else -80.0
        power = Power(
            mains_v=None if battery_v else 230.0,
            battery_v=battery_v or 13.2,
            on_battery=battery_v is not None,
        )
        return Telemetry(
            station=sid,
            session=session,
            seq=seq,
            ts=ts,
            backfill=backfill,
            agent_uptime_s=100,
            audio=Audio(rms_dbfs=rms),
            power=power,
        )

    def event(self, sid: str, code: EventCode, ts: int) -> Event:
        session, seq = self._next(sid)
        return Event(station=sid, session=session, seq=seq, ts=ts, code=code)

    def status(self, sid: str, state: str, session: int | None = None) -> Status:
        if session is None:
            if state == "online":
                self.session[sid] = self.session.get(sid, 0) + 1
            session = self.session.get(sid, 1)
        return Status(
            station=sid, session=session, seq=self.seq.get(sid, 0), ts=self.now, state=state
        )  # type: ignore[arg-type]

    def send(self, payload: object, received_ms: int | None = None) -> list[HealthEvent]:
        out = self.engine.observe(payload, self.now if received_ms is None else received_ms)  # type: ignore[arg-type]
        self.events.extend(out)
        return out

    def run(self, until: str | int, live: dict[str, Spec] | None = None) -> None:
        """Advance minute by minute to ``until``: stations in ``live`` report (kwargs of
        telemetry(), or a function of the time giving them), then the engine ticks."""
        end = local_ms(until) if isinstance(until, str) else until
        while self.now < end:
            self.now += MIN
            for sid, spec in (live or {}).items():
                kwargs = spec(self.now) if callable(spec) else spec
                if kwargs is not None:  # None: the station says nothing this minute
                    self.send(self.telemetry(sid, self.now, **kwargs))
            self.events.extend(self.engine.tick(self.now))


def kinds(events: list[HealthEvent]) -> list[tuple[HealthEventKind, str | None, int]]:
    return [(e.kind, e.station or e.upstream, e.ts_ms) for e in events]


def new_sim(start: str = "07:00", **defaults: object) -> Sim:
    return Sim(HealthEngine(make_inventory(**defaults), HealthConfig()), local_ms(start))


def test_unknown_until_seen_then_operating():
    sim = new_sim()
    assert sim.engine.state_at("cb-01267", sim.now) is State.UNKNOWN
    sim.run("07:05", {"cb-01267": {}})
    assert sim.engine.transitions["cb-01267"][0].state is State.OPERATING
    assert sim.engine.transitions["cb-01267"][0].ts_ms == local_ms("07:01")
    assert sim.events == []


def test_down_after_missed_reports_opens_incident_from_first_missed_report():
    sim = new_sim()
    sim.run("07:10", {"cb-01267": {}})
    sim.run("07:13")
    assert sim.events == []  # 3 intervals not yet exceeded
    sim.run("07:14")
    (ev,) = sim.events
    assert (ev.kind, ev.ts_ms, ev.details["detected_ms"]) == (
        K.INCIDENT_OPENED,
        local_ms("07:11"),
        local_ms("07:14"),
    )
    assert ev.incident is not None and ev.incident.cause is Cause.UNKNOWN
    assert ev.incident.id == f"cb-01267:{local_ms('07:11')}"
    assert sim.engine.state_at("cb-01267", local_ms("07:11")) is State.DOWN


def test_short_drop_is_damped_and_stale_will_is_ignored():
    sim = new_sim()
    sim.run("07:10", {"cb-01267": {}})
    sim.send(sim.status("cb-01267", "offline"), received_ms=sim.now + 10_000)
    sim.send(sim.status("cb-01267", "online"), received_ms=sim.now + 40_000)
    sim.send(sim.status("cb-01267", "offline", session=1), received_ms=sim.now + 41_000)  # stale
    sim.run("07:20", {"cb-01267": {}})
    assert sim.events == []
    assert sim.engine.counters["stale_status"] == 1
    states = [t.state for t in sim.engine.transitions["cb-01267"]]
    # no backfill came, so nothing shows it was on air: the drop stays DOWN
    assert states == [State.OPERATING, State.DOWN, State.OPERATING]


def test_silence_inside_window_then_recovery():
    sim = new_sim("17:00")
    sim.run("17:10", {"cb-01267": {}})
    sim.run("17:30", {"cb-01267": {"rms": -70.0}})  # quiet from 17:11
    opened = [e for e in sim.events if e.kind is K.INCIDENT_OPENED]
    assert kinds(opened) == [(K.INCIDENT_OPENED, "cb-01267", local_ms("17:16"))]
    assert opened[0].incident.cause is Cause.AUDIO_CHAIN
    sim.run("17:40", {"cb-01267": {}})
    assert kinds(sim.events)[-1] == (K.INCIDENT_CLOSED, "cb-01267", local_ms("17:31"))
    assert sim.events[-1].details["duration_min"] == 15.0


def test_quiet_outside_windows_is_fine_and_window_end_closes_silence():
    sim = new_sim("18:00")
    sim.run("19:30", {"cb-01267": {"rms": -70.0}})
    assert kinds(sim.events) == [
        (K.INCIDENT_OPENED, "cb-01267", local_ms("18:06")),
        (K.INCIDENT_CLOSED, "cb-01267", local_ms("18:30")),
    ]


def test_unscheduled_broadcast_reported_once_per_run():
    sim = new_sim("12:00")
    sim.run("12:30", {"cb-01267": {"rms": -10.0}})
    assert kinds(sim.events) == [(K.UNSCHEDULED_BROADCAST, "cb-01267", local_ms("12:11"))]


def test_battery_warning_from_voltage_trend_then_flat_battery_is_a_power_outage():
    sim = new_sim()
    start = sim.now

    def draining(now: int) -> dict | None:
        minutes = (now - start) // MIN
        volts = 12.6 - 0.05 * minutes  # flat (10.5 V) after 42 min: last reading at 41
        return None if minutes > 41 else {"battery_v": volts}

    sim.run("08:00", {"cb-01267": draining})
    warning = sim.events[0]
    # fit over the readings: 12.6 V falling 0.05 V/min reaches 10.5 V 30 min after 07:12
    assert (warning.kind, warning.ts_ms) == (K.BATTERY_WARNING, local_ms("07:12"))
    assert (warning.details["time_left_min"], warning.details["on_battery_min"]) == (30, 11)
    opened = sim.events[1]
    assert (opened.kind, opened.ts_ms) == (K.INCIDENT_OPENED, local_ms("07:42"))
    assert opened.incident.cause is Cause.POWER
    states = [(t.state, t.ts_ms) for t in sim.engine.transitions["cb-01267"]]
    assert states == [
        (State.ON_BATTERY, local_ms("07:01")),
        (State.BATTERY_LOW, local_ms("07:23")),
        (State.DOWN, local_ms("07:42")),
    ]


def test_duplicates_and_old_readings_change_nothing():
    sim = new_sim()
    sim.run("07:10", {"cb-01267": {}})
    t = sim.telemetry("cb-01267", sim.now - 5 * MIN, rms=-90.0)
    assert sim.send(t) == []
    assert sim.send(t) == []
    assert sim.engine.counters["duplicate"] == 1
    assert sim.engine.counters["late_ignored"] == 1
    assert sim.engine.state_at("cb-01267", sim.now) is State.OPERATING


def test_unknown_station_is_counted_not_fatal():
    sim = new_sim()
    stranger = Telemetry(station="cb-99999", session=1, seq=1, ts=sim.now, agent_uptime_s=1)
    assert sim.send(stranger) == []
    assert sim.engine.counters["unknown_station"] == 1
    assert sim.engine.upstream_down("gw-nope", sim.now) == []
    assert sim.engine.counters["unknown_upstream"] == 1


def test_reading_from_a_clock_far_ahead_uses_arrival_time():
    sim = new_sim()
    sim.run("07:05", {"cb-01267": {}})
    sim.send(sim.telemetry("cb-01267", sim.now + 3_600_000))  # agent clock an hour ahead
    sim.run("07:10", {"cb-01267": {}})
    assert sim.engine.counters["future_timestamp"] == 1
    assert sim.engine.counters["late_ignored"] == 0  # later honest readings still count
    assert sim.events == []


def test_cause_of_silence_from_the_evidence():
    sim = new_sim("17:00")
    a, b, c = "cb-01267", "cb-01282", "cb-01705"
    sim.run("17:02", {a: {}, b: {}, c: {}})
    sim.send(sim.event(a, EventCode.AMP_FAULT, sim.now))
    quiet = {"rms": -70.0}
    sim.run("17:10", {a: quiet, b: {**quiet, "battery_v": 12.2}, c: quiet})
    causes = {e.station: e.incident.cause for e in sim.events}
    assert causes == {a: Cause.EQUIPMENT, b: Cause.POWER, c: Cause.AUDIO_CHAIN}
