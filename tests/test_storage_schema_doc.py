"""SCHEMA.md stays true: its names exist in names.py and its queries run on real data."""

from __future__ import annotations

import re
from pathlib import Path

from collector.health.events import Cause, Incident, State
from collector.storage import names as n
from collector.storage.config import InfluxConfig
from collector.storage.points import (
    availability_point,
    clock_skew_point,
    compliance_point,
    incident_point,
    points_for_payload,
    reject_point,
    state_point,
    station_info_point,
)
from collector.storage.writers import V1Writer
from loaxa.payloads import Audio, Broadcast, Cluster, Event, EventCode, Fm, Power, Status, Telemetry

DOC = Path(__file__).resolve().parent.parent / "collector" / "storage" / "SCHEMA.md"
T0 = 1_790_000_000_000


def documented_queries() -> list[str]:
    block = re.search(r"```sql\n(.*?)```", DOC.read_text(), re.S)
    assert block, "SCHEMA.md has no sql block"
    return [q for q in block.group(1).splitlines() if q.strip()]


def test_every_measurement_is_documented():
    text = DOC.read_text()
    for m in n.MEASUREMENTS:
        assert f"### `{m}`" in text, m


def sample_lines() -> list[str]:
    kw = dict(station="cb-01267", session=1)
    payloads = [
        Telemetry(
            **kw,
            seq=1,
            ts=T0,
            agent_uptime_s=5,
            uptime_s=4,
            temp_c=30,
            power=Power(mains_v=221, battery_v=12.7),
            audio=Audio(rms_dbfs=-20, peak_dbfs=-3),
            fm=Fm(forward_w=30, reflected_w=1),
            clusters=[Cluster(id=1, kind="wired", relay_on=True, rms_dbfs=-20)],
        ),
        Event(**kw, seq=2, ts=T0 + 1, code=EventCode.POWER_LOST, value=1),
        Broadcast(**kw, seq=3, ts=T0 + 2, action="stop", start_ts=T0 - 600_000, end_ts=T0 + 2),
        Status(**kw, seq=4, ts=T0 + 3, state="online"),
    ]
    lines = [x for p in payloads for x in points_for_payload(p, "cao-bang", "01273")]
    inc = Incident(
        id="cb-01267:1",
        station="cb-01267",
        commune="01273",
        state=State.DOWN,
        cause=Cause.POWER,
        opened_ms=T0,
        closed_ms=T0 + 60_000,
    )
    return [
        *lines,
        state_point(T0, "cao-bang", "01273", "cb-01267", State.OPERATING),
        incident_point(inc, "cao-bang", "open"),
        incident_point(inc, "cao-bang", "close"),
        compliance_point(T0, "cao-bang", None, 1, 1, 100.0),
        compliance_point(T0, "cao-bang", "01273", 1, 1, 100.0, name="Hòa An"),
        reject_point(T0, "cao-bang", "bad_json", 2),
        clock_skew_point(T0, "cao-bang", "01273", "cb-01267", 250),
        station_info_point(
            T0,
            "cao-bang",
            "01273",
            "cb-01267",
            station_name="Cụm loa Nà Lẹng",
            commune_name="Hòa An",
            lat=22.6,
            lon=106.2,
            required=True,
            position="demo",
            technician="Nông Văn A",
            phone="+84912345678",
        ),
        availability_point(
            T0,
            "cao-bang",
            "01273",
            None,
            period_start_ms=T0 - 86_400_000,
            operating_ms=80_000_000,
            down_ms=6_400_000,
            maintenance_ms=0,
            unknown_ms=0,
        ),
    ]


def test_documented_queries_run_and_return_rows(influxdb):
    influxdb.create_database("loaxa")
    writer = V1Writer(InfluxConfig(url=influxdb.url, db="loaxa"))
    try:
        writer.write(sample_lines())
    finally:
        writer.close()
    queries = documented_queries()
    assert len(queries) >= 10
    for q in queries:
        q = q.replace("$timeFilter", f"time >= {T0 - 3_600_000}ms").replace("$__interval", "1m")
        assert influxdb.rows(q, "loaxa"), f"no rows for documented query: {q}"
