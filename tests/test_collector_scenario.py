"""Issue 3's scripted scenario: the real collector (in-process ``Collector``) behind real
Mosquitto and InfluxDB 1.x, alerts to real peers (the simulated GSM modem on a pty, aiosmtpd, a
local webhook, the MQTT alert feed), stations scripted through the broker and two controllers
on a real RS-485 pty behind a serial gateway.

Seven stations, each with one story, all inside a broadcast window built around "now":

=========  ========  ===========================================================================
station    commune   story
=========  ========  ===========================================================================
st-silent  01273     quiet in the window -> SILENT; acknowledged by SMS reply "OK <code>"; loud
st-down    01273     stops -> DOWN; nobody acknowledges: escalated to the Department; back
st-batt    01290     on battery, battery low (warning), stops (cause power); `loaxa ack`; back
st-maint   01290     in a maintenance window, stops: incident marked maintenance, nobody paged
st-flap    01705     drops three times, each shorter than its damping: one flap summary
gw-a, gw-b 01705     behind serial gateway gw-test: the line goes dead -> one upstream alert
=========  ========  ===========================================================================

Exact times. The engine decides from payload times wherever it can, so these equal the scripted
times exactly: a DOWN starts one interval after the last reading (``last + 1000``; detection
happens later, after 3 missed intervals, but the state is dated by the payload), a SILENT
``silence_after`` after the first quiet reading, a recovery at the first reading back, a
battery warning at the reading that crossed the threshold. What the engine dates by arrival or
wall clock can only be bounded: the gateway reports "down" by its own clock (at least
``dead_after_s`` after its last frame), an escalation is sent at an alert tick at least
``escalate_after_min`` after the page. Only the lower bounds are asserted: upper bounds would be
timing assertions on a shared machine.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

from collector.alerts.templates import Templates
from collector.health.events import Cause, Incident, State
from collector.health.store import HealthStore
from loaxa.cli import main
from tests.scenario_peers import LOUD, QUIET
from tests.scenario_setup import (
    BATT,
    DB,
    DEAD_AFTER,
    DEPT_MAIL,
    DOWN,
    ESCALATE,
    FLAP,
    GW_A,
    GW_B,
    INTERVAL,
    MAIL,
    MAINT,
    PHONE,
    SILENCE_AFTER,
    SILENT,
    TZ,
    Scenario,
)
from tests.servers import wait_until


@pytest.fixture
def scenario(tmp_path, mosquitto, influxdb):
    before = set(threading.enumerate())
    s = Scenario(tmp_path, mosquitto, influxdb)
    yield s
    s.close()
    wait_until(
        lambda: not {t for t in threading.enumerate() if t.is_alive()} - before,
        15,
        what="scenario threads to end",
    )


class Flapper(threading.Thread):
    """Drives st-flap's three short drops: stop, wait until the collector dates it DOWN, come
    back at once (well inside its 6 s damping), wait until it is operating again."""

    def __init__(self, s: Scenario) -> None:
        super().__init__(name="flapper", daemon=True)
        self.s, self.drops, self.error = s, [], None

    def run(self) -> None:
        try:
            for _ in range(3):
                last = self.s.fleet.stop(FLAP)
                wait_until(lambda: self.s.view().state_of(FLAP) is State.DOWN, 20, what="drop")
                back = self.s.fleet.change(FLAP)
                wait_until(lambda: self.s.view().state_of(FLAP) is State.OPERATING, 20, what="up")
                self.drops.append((last, back))
        except BaseException as err:  # surfaced by the test thread
            self.error = err


def timeline(s: Scenario, station: str) -> list[tuple[int, str]]:
    rows = s.influx.rows(f"SELECT state_name FROM station_state WHERE station = '{station}'", DB)
    return [(r["time"], r["state_name"]) for r in rows]


def incident_points(s: Scenario) -> list[dict]:
    try:
        return s.influx.rows("SELECT * FROM incident", DB)
    except RuntimeError:  # the database or measurement is not there yet
        return []


def gap(s: Scenario, station: str) -> tuple[int, int]:
    """(last reading before, first reading after) the one gap in a gateway station's data."""
    rows = s.influx.rows(f"SELECT seq FROM telemetry WHERE station = '{station}'", DB)
    times = [r["time"] for r in rows]
    (hole,) = [(a, b) for a, b in itertools.pairwise(times) if b - a > 2 * INTERVAL]
    return hole


def local(ms: int) -> str:
    return (
        Templates.load(Path(__file__).resolve().parents[1] / "config" / "templates", "vi")
        .pack("vi")
        .local_time(ms, TZ)
    )


def metrics(s: Scenario) -> str:
    url = f"http://127.0.0.1:{s.config.http.port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read().decode()


def status_json(s: Scenario, capsys) -> dict:
    """`loaxa status --json`: what the daemon last saved in its state store."""
    capsys.readouterr()
    assert main(["status", "--config", str(s.config_path), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_scripted_scenario(scenario: Scenario, capsys):
    s = scenario
    up = {SILENT, DOWN, BATT, FLAP, GW_A, GW_B}
    wait_until(
        lambda: (
            all(s.view().state_of(x) is State.OPERATING for x in up)
            and s.view().state_of(MAINT) is State.MAINTENANCE
        ),
        30,
        what="every station reporting",
    )

    # --- Act 1, all at once: silence, an outage left unacknowledged, planned work, a dead line,
    # a flapping link.
    q0 = s.fleet.change(SILENT, rms=QUIET)
    down_last = s.fleet.stop(DOWN)
    maint_last = s.fleet.stop(MAINT)
    mute_ms = time.time_ns() // 1_000_000
    s.peer.muted.set()
    flapper = Flapper(s)
    flapper.start()

    silent_alert = s.note("alert", "tech-sms", SILENT)
    assert (
        "KHÔNG PHÁT TIẾNG" in silent_alert["text"]
        and "mất tín hiệu âm thanh" in silent_alert["text"]
    )
    (code,) = silent_alert["codes"]
    s.modem.inject_sms(PHONE, f"OK {code}")  # the technician answers the SMS
    wait_until(lambda: s.router_count("acknowledged") == 1, 20, what="SMS acknowledgement")
    loud0 = s.fleet.change(SILENT, rms=LOUD)
    s.note("recovery", "tech-sms", SILENT)

    down_alert = s.note("alert", "tech-sms", DOWN)
    assert "MẤT TÍN HIỆU" in down_alert["text"]

    # The gateway's line is dead: one alert naming it, children held back, then it comes back.
    wait_until(
        lambda: {i.station for i in s.view().open_incidents} >= {GW_A, GW_B, MAINT},
        30,
        what="gateway children's incidents",
    )
    v = s.view()
    down_since = v.upstreams_down["gw-test"]
    held = {i.station: i for i in v.open_incidents if i.station in (GW_A, GW_B)}
    assert {i.station for i in v.open_incidents} == {GW_A, GW_B, MAINT, DOWN}
    scrape = metrics(s)
    assert "loaxa_upstreams_down 1.0" in scrape and "loaxa_open_incidents 4.0" in scrape
    assert {(i.cause, i.upstream) for i in held.values()} == {(Cause.UPSTREAM, "gw-test")}
    assert (
        v.stations[MAINT].state is State.MAINTENANCE and v.stations[MAINT].condition is State.DOWN
    )
    assert v.compliance.in_maintenance == {"01290": [MAINT]}
    below = {c.code: c.failing for c in v.compliance.below_goal}
    assert below["01705"] == {GW_A: State.DOWN, GW_B: State.DOWN}
    upstream_alert = s.note("upstream_down", "tech-hook", "gw-test")
    assert "Cổng RS-485 Thục Phán NGỪNG HOẠT ĐỘNG" in upstream_alert["text"]
    assert "Bế Triều" in upstream_alert["text"] and "Nam Tuấn" in upstream_alert["text"]
    held_in_store = wait_until(
        lambda: (j := status_json(s, capsys))["stations"][GW_A]["cause"] == "upstream" and j,
        20,
        what="loaxa status showing the held incident",
    )
    assert held_in_store["upstreams_down"] == {"gw-test": down_since}
    assert held_in_store["stations"][MAINT]["state"] == "maintenance"
    assert main(["status", "--config", str(s.config_path)]) == 0
    (row,) = [r for r in capsys.readouterr().out.splitlines() if f" {GW_A} " in r]
    assert row.split()[:4] == ["Xã", "Hòa", "An", GW_A] and "down (upstream)" in row
    assert row.endswith("Hoàng Văn Hùng")
    unmute_ms = time.time_ns() // 1_000_000
    s.peer.muted.clear()
    restored = s.note("upstream_restored", "tech-hook", "gw-test")
    wait_until(
        lambda: not {GW_A, GW_B} & {i.station for i in s.view().open_incidents},
        30,
        what="gateway children back",
    )

    # --- Act 2: battery. On battery, low (warning), then flat; acknowledged with `loaxa ack`.
    batt0 = s.fleet.change(BATT, on_battery=True, battery_v=12.4)
    wait_until(lambda: s.view().state_of(BATT) is State.ON_BATTERY, 20, what="on battery")
    low = s.fleet.change(BATT, battery_v=11.2)
    warning = s.note("info", "tech-mail", BATT)
    assert "sắp hết ắc quy" in warning["subject"]
    # Below battery_low_v after a single earlier reading: too few for a trend, time left unknown.
    assert (
        warning["text"]
        == "[loaxa] Đài Pác Miầu (Xã Bảo Lâm) đang chạy ắc quy 11.2 V, còn khoảng ? giờ."
    )
    batt_last = s.fleet.stop(BATT)
    batt_alert = s.note("alert", "tech-mail", BATT)
    assert "mất điện" in batt_alert["text"]
    by = "Trực ban Sở"
    assert main(["ack", batt_alert["codes"][0], "--config", str(s.config_path), "--by", by]) == 0
    confirm = s.note("ack_confirm", "tech-mail", BATT)
    assert by in confirm["text"]

    # --- Act 3: st-down was never acknowledged: the Department gets it, then it comes back.
    escalation = s.note("escalation", "dept", DOWN, timeout=45)
    assert escalation["text"].startswith("[loaxa] CHUYỂN CẤP: Đài Đề Thám")
    assert "Kỹ thuật viên Nông Văn Minh chưa xác nhận" in escalation["text"]
    down_back = s.fleet.change(DOWN)
    batt_back = s.fleet.change(BATT, on_battery=False, battery_v=None)
    maint_back = s.fleet.change(MAINT)
    recoveries = {r: s.note("recovery", r, DOWN) for r in ("tech-sms", "dept")}
    batt_recovery = s.note("recovery", "tech-mail", BATT)
    flapper.join(60)
    assert flapper.error is None, flapper.error
    flap_note = s.note("info", "tech-hook", FLAP)
    assert flap_note["text"] == (
        "[loaxa] Đài Hưng Đạo (Xã Hòa An) chập chờn: mất và có lại 3 lần trong 60 phút qua."
    )
    wait_until(lambda: not s.view().open_incidents, 30, what="every incident closed")
    wait_until(lambda: len(s.feed.received) == 13, 30, what="13 notifications on the feed")
    wait_until(lambda: s.collector.alerts.stats()["queued"] == 0, 30, what="alerts delivered")
    wait_until(lambda: len(s.smtp.messages) == 6 and len(s.hook.received) == 3, 30, what="mail")
    stats = s.collector.alerts.stats()
    scrape = metrics(s)
    for line in (
        'loaxa_stations{state="operating"} 6.0',
        'loaxa_stations{state="maintenance"} 1.0',
        'loaxa_stations{state="down"} 0.0',
        "loaxa_open_incidents 0.0",
        "loaxa_compliance_percent 100.0",
        "loaxa_upstreams_down 0.0",
    ):
        assert f"\n{line}\n" in scrape, line
    # InfluxDB gets the spool's rows asynchronously (a stop leaves unwritten rows in the spool
    # for the next run): once the spool has been empty, every row of the story is written.
    wait_until(lambda: s.collector.storage.snapshot()["spool_depth"] == 0, 30, what="spool drained")
    s.stop_collector()  # a last state save

    final = status_json(s, capsys)
    assert {sid: st["state"] for sid, st in final["stations"].items()} == {
        **dict.fromkeys([SILENT, DOWN, BATT, FLAP, GW_A, GW_B], "operating"),
        MAINT: "maintenance",
    }
    assert final["open_incidents"] == [] and final["compliance"]["percent"] == 100.0

    # --- Incidents: exactly these, at the scripted times (state store and InfluxDB agree).
    ga, gb = gap(s, GW_A), gap(s, GW_B)
    expected = {
        Incident(
            f"{SILENT}:{q0 + SILENCE_AFTER}",
            SILENT,
            "01273",
            State.SILENT,
            Cause.AUDIO_CHAIN,
            q0 + SILENCE_AFTER,
            loud0,
        ),
        Incident(
            f"{DOWN}:{down_last + INTERVAL}",
            DOWN,
            "01273",
            State.DOWN,
            Cause.UNKNOWN,
            down_last + INTERVAL,
            down_back,
        ),
        Incident(
            f"{BATT}:{batt_last + INTERVAL}",
            BATT,
            "01290",
            State.DOWN,
            Cause.POWER,
            batt_last + INTERVAL,
            batt_back,
        ),
        Incident(
            f"{MAINT}:{maint_last + INTERVAL}",
            MAINT,
            "01290",
            State.DOWN,
            Cause.UNKNOWN,
            maint_last + INTERVAL,
            maint_back,
            maintenance=True,
        ),
        Incident(
            f"{GW_A}:{ga[0] + INTERVAL}",
            GW_A,
            "01705",
            State.DOWN,
            Cause.UPSTREAM,
            ga[0] + INTERVAL,
            ga[1],
            upstream="gw-test",
        ),
        Incident(
            f"{GW_B}:{gb[0] + INTERVAL}",
            GW_B,
            "01705",
            State.DOWN,
            Cause.UPSTREAM,
            gb[0] + INTERVAL,
            gb[1],
            upstream="gw-test",
        ),
    }
    store = HealthStore(s.config.daemon.state_db)
    assert set(store.incidents()) == expected
    store.close()
    points = incident_points(s)
    assert sorted((p["incident_id"], p["phase"], p["time"]) for p in points) == sorted(
        [(i.id, "open", i.opened_ms) for i in expected]
        + [(i.id, "close", i.closed_ms) for i in expected]
    )
    assert {p["incident_id"]: p["maintenance"] for p in points if p["phase"] == "close"} == {
        i.id: i.maintenance for i in expected
    }

    # --- Timelines: payload-dated transitions.
    assert timeline(s, SILENT)[1:] == [(q0 + SILENCE_AFTER, "silent"), (loud0, "operating")]
    assert timeline(s, DOWN)[1:] == [(down_last + INTERVAL, "down"), (down_back, "operating")]
    assert timeline(s, BATT)[1:4] == [
        (batt0, "on_battery"),
        (low, "battery_low"),
        (batt_last + INTERVAL, "down"),
    ]
    flaps = [(last + INTERVAL, "down") for last, _ in flapper.drops]
    backs = [(back, "operating") for _, back in flapper.drops]
    assert timeline(s, FLAP)[1:] == [row for pair in zip(flaps, backs, strict=True) for row in pair]
    assert timeline(s, MAINT) == [(s.collector.inventory.maintenance[0].start_ms, "maintenance")]

    # --- Bounds where the engine must use the wall clock (see the module docstring).
    # The gateway reported the line dead by its own clock (monotonic, so a few ms of slack
    # against the wall-clock payload times); the engine dates the upstream from whichever came
    # first: that report, or its children's payload-dated drops (quorum, both DOWN).
    report_ms = restored["details"]["opened_ms"]  # the UPSTREAM_DOWN time
    assert report_ms >= mute_ms and report_ms >= max(ga[0], gb[0]) + DEAD_AFTER - 50
    assert down_since == min(report_ms, max(ga[0], gb[0]) + INTERVAL)
    assert restored["details"]["closed_ms"] >= unmute_ms
    assert escalation["ts_ms"] >= down_alert["ts_ms"] + ESCALATE

    # --- Recovery messages carry the outage length in station time.
    for r in recoveries.values():
        assert r["details"]["outage_ms"] == down_back - (down_last + INTERVAL)
        span = f"(từ {local(down_last + INTERVAL)} đến {local(down_back)})"
        assert (
            "Đài Đề Thám (Phường Thục Phán) đã hoạt động lại sau" in r["text"] and span in r["text"]
        )
    assert batt_recovery["details"]["outage_ms"] == batt_back - (batt_last + INTERVAL)

    # --- Who got what, on which channel: the feed has every notification; each person's
    # channel got exactly theirs, word for word.
    got = Counter(
        (n["recipient"]["id"], n["kind"], n["station"] or n["upstream"]) for n in s.feed.received
    )
    assert got == Counter(
        {
            ("tech-sms", "alert", SILENT): 1,
            ("tech-sms", "recovery", SILENT): 1,
            ("tech-sms", "alert", DOWN): 1,
            ("tech-sms", "recovery", DOWN): 1,
            ("dept", "escalation", DOWN): 1,
            ("dept", "recovery", DOWN): 1,
            ("tech-mail", "info", BATT): 1,
            ("tech-mail", "alert", BATT): 1,
            ("tech-mail", "ack_confirm", BATT): 1,
            ("tech-mail", "recovery", BATT): 1,
            ("tech-hook", "upstream_down", "gw-test"): 1,
            ("tech-hook", "upstream_restored", "gw-test"): 1,
            ("tech-hook", "info", FLAP): 1,
        }
    )
    feed_of = lambda who: [n for n in s.feed.received if n["recipient"]["id"] == who]  # noqa: E731
    assert sorted((m.number, m.text) for m in s.modem.sent) == sorted(
        (PHONE, n["text"]) for n in feed_of("tech-sms")
    )
    mails = sorted((to, m["Subject"], m.get_content().strip()) for to, m in s.smtp.messages)
    assert mails == sorted(
        [([DEPT_MAIL], n["subject"], n["text"]) for n in feed_of("dept")]
        + [([MAIL], n["subject"], n["text"]) for n in feed_of("tech-mail")]
    )
    assert sorted(s.hook.received, key=str) == sorted(feed_of("tech-hook"), key=str)
    assert stats["undelivered"] == 0
    router = stats["router"]
    assert (router["suppressed_maintenance"], router["suppressed_upstream_child"]) == (1, 2)
    assert (router["acknowledged"], router["escalations"]) == (2, 1)


# --- HealthFeed.view(): the read-only picture, without servers -------------------------------


def test_health_feed_view_is_a_frozen_picture(tmp_path):
    from collector.health.config import HealthConfig
    from collector.health.engine import HealthEngine
    from collector.ingest.health_feed import HealthFeed
    from collector.ingest.validate import Accepted
    from loaxa.topics import Kind
    from tests.test_health_engine import MIN, Sim, local_ms, make_inventory

    a, b, d = "cb-01267", "cb-01282", "cb-01290"  # d is in maintenance 09:00-10:00
    engine = HealthEngine(make_inventory(maintenance=d), HealthConfig())
    store, points = HealthStore(tmp_path / "state.sqlite"), []

    class Storage:
        def append(self, lines) -> None:
            points.extend(lines)

    feed = HealthFeed(engine, store, Storage(), alerts=None)
    sim = Sim(engine, local_ms("08:50"))

    def send(payload, at: int) -> None:
        st = engine.inventory.stations[payload.station]
        feed.observe([Accepted("cao-bang", st.commune, st.id, Kind(payload.kind), payload, at)])

    t0 = local_ms("08:50")
    for sid in (a, b, "cb-01705", d):
        send(sim.telemetry(sid, t0, rms=-20.0), t0)
    feed.upstream_state("gw-1", False, t0 + 5 * MIN)
    before = feed.view(t0 + 6 * MIN)
    assert before.stations[a].state is State.OPERATING and before.stations[a].since_ms == t0
    assert before.upstreams_down == {"gw-1": t0 + 5 * MIN}
    assert before.open_incidents == () and before.compliance.meets_goal

    will = sim.status(a, "offline")
    send(will, local_ms("09:10"))  # A's Last Will: DOWN from its arrival
    send(sim.telemetry(d, local_ms("09:12"), rms=-20.0), local_ms("09:12"))  # past damping
    now = feed.view(local_ms("09:12"))
    assert (now.stations[a].state, now.stations[a].since_ms) == (State.DOWN, local_ms("09:10"))
    assert now.stations[a].cause is Cause.UNKNOWN
    assert now.stations[a].incident_id == f"{a}:{local_ms('09:10')}"
    assert [i.id for i in now.open_incidents] == [f"{a}:{local_ms('09:10')}"]
    assert now.stations[d].state is State.MAINTENANCE
    assert now.stations[d].since_ms == local_ms("09:00")
    assert now.stations[d].condition is State.OPERATING
    assert now.compliance.in_maintenance == {"01290": [d]}
    assert {c.code: c.failing for c in now.compliance.below_goal} == {"01273": {a: State.DOWN}}
    # The earlier picture did not move with the engine.
    assert before.stations[a].state is State.OPERATING and before.open_incidents == ()
    assert store.incidents() == list(now.open_incidents)  # the feed recorded it too
    store.close()
