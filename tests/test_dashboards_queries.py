"""Every dashboard query, run against a real InfluxDB filled by a scripted scenario.

The scenario is written with the project's own encoders (collector.storage.points,
dashboards.feeds, collector.health.compliance): on 20 October 2026 at 12:00 local time
(Asia/Ho_Chi_Minh) six communes stand as follows, and the panels must show exactly that.

  10001 Xã An     s-an       operating since September; one 90-minute outage (power) on 5 Oct
  10002 Xã Bình   s-binh     down since 10:00 (network)
  10003 Xã Cao    s-cao      down 06:00-06:20 (power), on battery since 11:00 (operating)
  10004 Xã Đông   s-dong     silent since 11:30 (audio chain)
  10005 Xã Én     s-en       in maintenance since 09:00
  10006 Xã Phúc   s-phuc-1, s-phuc-2 operating; s-phuc-3 (not required) down since 15 Oct
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from collector.health.availability import Transition
from collector.health.compliance import compliance
from collector.health.events import Cause, Incident, State
from collector.inventory import Inventory, parse_inventory
from collector.storage.config import InfluxConfig
from collector.storage.points import (
    compliance_point,
    incident_point,
    points_for_payload,
    state_point,
)
from collector.storage.writers import V1Writer
from dashboards import compliance as compliance_dash
from dashboards import overview, station
from dashboards.feeds import availability_points, station_info_points
from dashboards.macros import interpolate, join_by_field, panel_queries, sort_rows
from loaxa.payloads import Audio, Broadcast, Event, EventCode, Power, Telemetry
from tests.servers import InfluxDB

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
DB = "loaxa"
MIN = 60_000


def local_ms(*args: int) -> int:
    return int(datetime(*args, tzinfo=TZ).timestamp() * 1000)


NOW = local_ms(2026, 10, 20, 12, 0)
MONTH_START = local_ms(2026, 10, 1)
ELAPSED_MIN = (NOW - MONTH_START) // MIN  # 19.5 days = 28 080 minutes
OUTAGE = (local_ms(2026, 10, 5, 14, 0), local_ms(2026, 10, 5, 15, 30))  # 90 minutes
CAO_OUTAGE = (local_ms(2026, 10, 20, 6, 0), local_ms(2026, 10, 20, 6, 20))  # 20 minutes

COMMUNES = {
    "10001": "Xã An",
    "10002": "Xã Bình",
    "10003": "Xã Cao",
    "10004": "Xã Đông",
    "10005": "Xã Én",
    "10006": "Xã Phúc",
}


def inventory() -> Inventory:
    stations = [
        (f"s-{n}", c)
        for n, c in [
            ("an", "10001"),
            ("binh", "10002"),
            ("cao", "10003"),
            ("dong", "10004"),
            ("en", "10005"),
            ("phuc-1", "10006"),
            ("phuc-2", "10006"),
            ("phuc-3", "10006"),
        ]
    ]
    return parse_inventory(
        {
            "province": {
                "code": "04",
                "slug": "cao-bang",
                "name": "Cao Bằng",
                "department": "Sở VHTTDL",
            },
            "schedules": [{"id": "daily", "windows": ["05:30-06:30", "17:00-18:30"]}],
            "technicians": [
                {"id": "t1", "name": "Nông Văn Minh", "phone": "+84912345678"},
                {"id": "t2", "name": "Bế Thị Hoa", "phone": "+84987654321"},
            ],
            "communes": [
                {
                    "code": c,
                    "name": name,
                    "schedule": "daily",
                    "technicians": ["t2" if c == "10002" else "t1"],
                }
                for c, name in COMMUNES.items()
            ],
            "stations": [
                {
                    "id": sid,
                    "commune": c,
                    "name": f"Đài {sid}",
                    "lat": 22.6 + i / 100,
                    "lon": 106.2 + i / 100,
                    "position": "demo",
                    "required": sid != "s-phuc-3",
                }
                for i, (sid, c) in enumerate(stations)
            ],
        }
    )


def timelines() -> dict[str, list[Transition]]:
    def tl(sid: str, *steps: tuple[int, State, Cause | None]) -> list[Transition]:
        start = [Transition(sid, local_ms(2026, 9, 25), State.OPERATING)]
        return start + [Transition(sid, ts, st, cause) for ts, st, cause in steps]

    return {
        "s-an": tl(
            "s-an", (OUTAGE[0], State.DOWN, Cause.POWER), (OUTAGE[1], State.OPERATING, None)
        ),
        "s-binh": tl("s-binh", (local_ms(2026, 10, 20, 10), State.DOWN, Cause.NETWORK)),
        "s-cao": tl(
            "s-cao",
            (CAO_OUTAGE[0], State.DOWN, Cause.POWER),
            (CAO_OUTAGE[1], State.OPERATING, None),
            (local_ms(2026, 10, 20, 11), State.ON_BATTERY, Cause.POWER),
        ),
        "s-dong": tl("s-dong", (local_ms(2026, 10, 20, 11, 30), State.SILENT, Cause.AUDIO_CHAIN)),
        "s-en": tl("s-en", (local_ms(2026, 10, 20, 9), State.MAINTENANCE, None)),
        "s-phuc-1": tl("s-phuc-1"),
        "s-phuc-2": tl("s-phuc-2"),
        "s-phuc-3": tl("s-phuc-3", (local_ms(2026, 10, 15), State.DOWN, Cause.EQUIPMENT)),
    }


def payload_lines() -> list[str]:
    kw = {"session": 1, "agent_uptime_s": 600}
    lines = []
    for i in range(5):  # s-cao: on battery, mains gone, audio on air
        ts = NOW - (5 - i) * MIN
        p = Telemetry(
            station="s-cao",
            seq=i,
            ts=ts,
            uptime_s=3600 + i * 60,
            power=Power(mains_v=0.0, battery_v=12.4 - i * 0.1, on_battery=True),
            audio=Audio(rms_dbfs=-18.0 - i, peak_dbfs=-3.0),
            **kw,
        )
        lines += points_for_payload(p, "cao-bang", "10003")
    reboot = Event(station="s-cao", session=1, seq=9, ts=CAO_OUTAGE[1], code=EventCode.REBOOT)
    start, stop = NOW - 60 * MIN, NOW - 30 * MIN
    cast = [
        Broadcast(
            station="s-cao",
            session=1,
            seq=10 + j,
            ts=ts,
            action=action,
            start_ts=start,
            end_ts=None if action == "start" else stop,
            source="provincial_relay",
        )
        for j, (ts, action) in enumerate([(start, "start"), (stop, "stop")])
    ]
    for p in [reboot, *cast]:
        lines += points_for_payload(p, "cao-bang", "10003")
    return lines


def incident_lines() -> list[str]:
    an = Incident("s-an:1", "s-an", "10001", State.DOWN, Cause.POWER, OUTAGE[0], OUTAGE[1])
    cao = Incident("s-cao:1", "s-cao", "10003", State.DOWN, Cause.POWER, *CAO_OUTAGE)
    binh_open = local_ms(2026, 10, 20, 10)
    binh = Incident(f"s-binh:{binh_open}", "s-binh", "10002", State.DOWN, Cause.NETWORK, binh_open)
    return [
        incident_point(an, "cao-bang", "open"),
        incident_point(an, "cao-bang", "close"),
        incident_point(cao, "cao-bang", "open"),
        incident_point(cao, "cao-bang", "close"),
        incident_point(binh, "cao-bang", "open"),
    ]


def health_lines(inv: Inventory, tls: dict[str, list[Transition]]) -> list[str]:
    lines = []
    for sid, tl in tls.items():
        commune = inv.stations[sid].commune
        lines += [state_point(t.ts_ms, "cao-bang", commune, sid, t.state, t.cause) for t in tl]

    def state_at(sid: str, ts: int) -> State:
        return max((t for t in tls[sid] if t.ts_ms <= ts), key=lambda t: t.ts_ms).state

    for ts in (NOW - 3 * 3_600_000, NOW):
        snap = compliance(inv, state_at, ts)
        lines.append(
            compliance_point(ts, "cao-bang", None, snap.operating, snap.counted, snap.goal_percent)
        )
        for code, cc in snap.communes.items():
            counted = len(cc.required) - len(cc.maintenance)  # maintenance: not counted
            lines.append(
                compliance_point(
                    ts,
                    "cao-bang",
                    code,
                    counted - len(cc.failing),
                    counted,
                    snap.goal_percent,
                    cc.name,
                )
            )
    # Two rollups: the dashboards must read the latest one.
    lines += availability_points(inv, tls, NOW - 24 * 3_600_000)
    lines += availability_points(inv, tls, NOW)
    return lines


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    server = InfluxDB(tmp_path_factory.mktemp("influxdb-dashboards")).start()
    try:
        server.create_database(DB)
        inv = inventory()
        tls = timelines()
        lines = [
            *station_info_points(inv, MONTH_START - 86_400_000),
            *health_lines(inv, tls),
            *incident_lines(),
            *payload_lines(),
        ]
        writer = V1Writer(InfluxConfig(url=server.url, db=DB))
        try:
            writer.write(lines)
        finally:
            writer.close()
        yield server, inv
    finally:
        server.stop()


ALL = {
    "province": "cao-bang",
    "commune": list(COMMUNES),
    "station": ["s-an", "s-binh", "s-cao", "s-dong", "s-en", "s-phuc-1", "s-phuc-2", "s-phuc-3"],
    "goal": "100",
}


def run(
    db,
    dashboard: dict,
    title: str,
    variables: dict | None = None,
    window: tuple[int, int] = (MONTH_START, NOW),
) -> list[list[dict]]:
    """The rows of each query of the panel ``title``, as Grafana would fetch them."""
    server, _ = db
    panel = next(p for p in dashboard["panels"] if p["title"] == title)
    return [
        server.rows(interpolate(t["query"], *window, "1m", variables or ALL), DB)
        for t in panel["targets"]
    ]


def value(rows: list[dict], column: str, noValue: float = 0) -> float:
    return rows[0][column] if rows else noValue


@pytest.mark.parametrize("module", [overview, station, compliance_dash])
def test_every_query_runs_and_returns_rows(db, module):
    server, inv = db
    dashboard = module.build(inv)
    variables = {**ALL, "station": ["s-cao"]} if module is station else ALL
    window = (NOW - 24 * 3_600_000, NOW) if module is station else (MONTH_START, NOW)
    checked = 0
    for where, query in panel_queries(dashboard):
        rows = server.rows(interpolate(query, *window, "1m", variables), DB)
        assert rows, f"{where}: no rows for {query}"
        checked += 1
    assert checked >= 8


def test_province_share_and_counts(db):
    dash = overview.build(db[1])
    # An, Cao (on battery), Phúc operate; Bình down, Đông silent; Én in maintenance: not counted.
    assert run(db, dash, "Xã có hệ thống truyền thanh đang hoạt động")[0][0]["share"] == 60.0
    counts = {
        title: value(run(db, dash, title)[0], "n")
        for title in [
            "Xã không hoạt động",
            "Trạm mất tín hiệu",
            "Trạm im lặng",
            "Trạm chạy ắc quy",
            "Trạm bảo trì",
        ]
    }
    assert counts == {
        "Xã không hoạt động": 2,
        "Trạm mất tín hiệu": 2,
        "Trạm im lặng": 1,
        "Trạm chạy ắc quy": 1,
        "Trạm bảo trì": 1,
    }


def test_counts_follow_the_commune_variable(db):
    dash = overview.build(db[1])
    only_binh = {**ALL, "commune": ["10002"]}
    assert value(run(db, dash, "Trạm mất tín hiệu", only_binh)[0], "n") == 1
    assert value(run(db, dash, "Trạm im lặng", only_binh)[0], "n") == 0  # noValue "0"


def test_not_operating_list_names_since_cause_technician_phone(db):
    dash = overview.build(db[1])
    state, info = run(db, dash, "Trạm không hoạt động")
    rows = sort_rows(join_by_field([state, info], "station", "inner"), "time 1")
    got = [
        (r["station"], r["state"], r["cause"], r["time 1"], r["technician"], r["phone"])
        for r in rows
    ]
    tech, binh_tech = ("Nông Văn Minh", "+84912345678"), ("Bế Thị Hoa", "+84987654321")
    assert got == [  # oldest first
        ("s-phuc-3", "down", "equipment", local_ms(2026, 10, 15), *tech),
        ("s-en", "maintenance", None, local_ms(2026, 10, 20, 9), *tech),
        ("s-binh", "down", "network", local_ms(2026, 10, 20, 10), *binh_tech),
        ("s-dong", "silent", "audio_chain", local_ms(2026, 10, 20, 11, 30), *tech),
    ]
    assert "s-cao" not in {r["station"] for r in rows}  # on battery still operates


def test_geomap_has_every_station_with_coordinates_and_state(db):
    dash = overview.build(db[1])
    info, state = run(db, dash, "Bản đồ trạm theo trạng thái")
    rows = {r["station"]: r for r in join_by_field([info, state], "station")}
    assert len(rows) == 8
    assert rows["s-an"]["lat"] == pytest.approx(22.6) and rows["s-an"]["lon"] == 106.2
    assert rows["s-binh"]["state"] == "down" and rows["s-cao"]["state"] == "on_battery"


def test_availability_by_commune_month_to_date_worst_first(db):
    dash = overview.build(db[1])
    avail, names = run(db, dash, "Tỷ lệ hoạt động theo xã, từ đầu tháng (thấp nhất trước)")
    rows = sort_rows(join_by_field([avail, names], "commune", "inner"), "percent")
    got = [(r["commune_name"], r["percent"]) for r in rows]
    assert ELAPSED_MIN == 28_080
    assert [name for name, _ in got[:4]] == ["Xã Bình", "Xã An", "Xã Đông", "Xã Cao"]
    assert got[0][1] == pytest.approx(100 * (ELAPSED_MIN - 120) / ELAPSED_MIN)
    # The 90-minute outage of 5 October: 99.679 %, to the second.
    assert got[1][1] == pytest.approx(100 * (ELAPSED_MIN - 90) / ELAPSED_MIN, abs=1e-9)
    assert got[2][1] == pytest.approx(100 * (ELAPSED_MIN - 30) / ELAPSED_MIN)
    assert got[3][1] == pytest.approx(100 * (ELAPSED_MIN - 20) / ELAPSED_MIN)  # on battery: up
    # Maintenance is not downtime; a non-required station does not count for its commune.
    assert sorted(got[4:]) == [("Xã Phúc", 100.0), ("Xã Én", 100.0)]


def test_timeline_shows_the_outage_and_the_state_carried_in(db):
    dash = overview.build(db[1])
    window = (OUTAGE[0] - 30 * MIN, OUTAGE[1] + 30 * MIN)
    rows = run(db, dash, "Diễn biến sự cố", {**ALL, "station": ["s-an", "s-binh"]}, window)[0]
    got = [(r["station"], r["time"], r["state"]) for r in rows]
    # The transitions, each held until the next; the state before the window comes along
    # (lookback), so the left edge is drawn "operating", not blank.
    assert got == [
        ("s-an", local_ms(2026, 9, 25), "operating"),
        ("s-an", OUTAGE[0], "down"),
        ("s-an", OUTAGE[1], "operating"),
        ("s-binh", local_ms(2026, 9, 25), "operating"),
    ]


def test_station_detail_panels(db):
    dash = station.build(db[1])
    v, window = {**ALL, "station": ["s-cao"]}, (NOW - 24 * 3_600_000, NOW)
    audio = run(db, dash, "Âm thanh (RMS / đỉnh)", v, window)[0]
    assert [r["RMS"] for r in audio if r["RMS"] is not None] == [-18, -19, -20, -21, -22]
    power = [
        r for r in run(db, dash, "Điện áp lưới và ắc quy", v, window)[0] if r["Ắc quy"] is not None
    ]
    assert power[0]["Ắc quy"] == pytest.approx(12.4) and power[0]["Điện lưới"] == 0.0
    on_batt = run(db, dash, "Thời gian chạy ắc quy", v, window)[0]
    assert any(r["Chạy ắc quy"] is True for r in on_batt)
    assert value(run(db, dash, "Số lần khởi động lại", v, window)[0], "reboots") == 1
    state = run(db, dash, "Trạng thái", v, window)[0]
    assert [(r["time"], r["state"]) for r in state][-3:] == [
        (CAO_OUTAGE[0], "down"),
        (CAO_OUTAGE[1], "operating"),
        (local_ms(2026, 10, 20, 11), "on_battery"),
    ]


def test_monthly_compliance_panels(db):
    dash = compliance_dash.build(db[1])
    assert value(run(db, dash, "Xã đạt mục tiêu")[0], "n") == 2  # Én, Phúc at 100 %
    assert value(run(db, dash, "Xã có dữ liệu")[0], "n") == 6
    stations = {r["station"]: r for r in run(db, dash, "Theo trạm (thấp nhất trước)")[0]}
    assert stations["s-phuc-3"]["percent"] == pytest.approx(100 * 14 / 19.5)
    assert stations["s-en"]["maintenance_min"] == 180 and stations["s-en"]["down_min"] == 0
    outages = {r["cause"]: r for r in run(db, dash, "Sự cố theo nguyên nhân (ngoài bảo trì)")[0]}
    power = outages["power"]  # An 90 min, Cao 20 min; Bình's outage is still open
    assert (power["outages"], power["minutes"], power["longest_min"], power["mttr_min"]) == (
        2,
        110,
        90,
        55,
    )
    hours = run(db, dash, "Giờ phát theo nguồn chương trình")[0]
    assert hours[0]["source"] == "provincial_relay" and hours[0]["hours"] == 0.5
