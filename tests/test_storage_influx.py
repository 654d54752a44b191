"""Encode, spool, write and query back every measurement against a real InfluxDB 1.6."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.health.events import Cause, Incident, State
from collector.storage import Storage, StorageConfig
from collector.storage import names as n
from collector.storage.config import InfluxConfig, SpoolConfig
from collector.storage.line_protocol import _BAD_BACKSLASH, encode_line
from collector.storage.points import (
    clock_skew_point,
    compliance_point,
    incident_point,
    points_for_payload,
    reject_point,
    state_point,
)
from collector.storage.writers import V1Writer
from loaxa.payloads import (
    Audio,
    Broadcast,
    Cluster,
    Event,
    EventCode,
    Fm,
    Power,
    ProgramSource,
    Status,
    Telemetry,
)
from tests.servers import wait_until

DB = "loaxa"
T0 = 1_790_000_000_000


def make_storage(tmp_path, url: str, **influx) -> Storage:
    cfg = StorageConfig(
        influx=InfluxConfig(
            url=url,
            db=DB,
            create_database=True,
            batch_size=100,
            flush_interval_ms=20,
            retry_initial_ms=20,
            retry_max_ms=200,
            **influx,
        ),
        spool=SpoolConfig(
            path=tmp_path / "spool.sqlite", dead_letter_path=tmp_path / "dead.jsonl", fsync=False
        ),
    )
    return Storage(cfg)


@pytest.fixture
def storage(tmp_path, influxdb):
    st = make_storage(tmp_path, influxdb.url)
    st.start()
    yield st
    st.stop()


def drained(st: Storage) -> bool:
    return st.spool.depth == 0


def test_every_measurement_round_trips(storage, influxdb):
    tele = Telemetry(
        station="cb-01267",
        session=2,
        seq=10,
        ts=T0,
        agent_uptime_s=99,
        uptime_s=50,
        audio=Audio(rms_dbfs=-21.5, silent=False),
        power=Power(battery_v=12.4, on_battery=True),
        temp_c=35.5,
        fm=Fm(forward_w=28.0, reflected_w=0.7),
        clusters=[Cluster(id=3, kind="wired", relay_on=True, fault=True, rms_dbfs=-30)],
    )
    payloads = [
        tele,
        Event(
            station="cb-01267",
            session=2,
            seq=11,
            ts=T0 + 1,
            code=EventCode.DOOR_OPEN,
            cluster=3,
            value=1,
        ),
        Broadcast(
            station="cb-01267",
            session=2,
            seq=12,
            ts=T0 + 2,
            action="stop",
            source=ProgramSource.NATIONAL_RELAY,
            start_ts=T0 - 60_000,
            end_ts=T0 + 2,
        ),
        Status(
            station="cb-01267", session=2, seq=13, ts=T0 + 3, state="online", agent_version="0.1.0"
        ),
    ]
    lines = [line for p in payloads for line in points_for_payload(p, "cao-bang", "01273")]
    inc = Incident(
        id=f"cb-01267:{T0}",
        station="cb-01267",
        commune="01273",
        state=State.DOWN,
        cause=Cause.NETWORK,
        opened_ms=T0,
        closed_ms=T0 + 90_000,
    )
    lines += [
        state_point(T0 + 4, "cao-bang", "01273", "cb-01267", State.DOWN, Cause.NETWORK),
        incident_point(inc, "cao-bang", "open"),
        incident_point(inc, "cao-bang", "close"),
        compliance_point(T0, "cao-bang", "01273", 9, 10, goal_percent=100, name="Xã Hòa An"),
        compliance_point(T0, "cao-bang", None, 90, 100, goal_percent=100),
        reject_point(
            T0,
            "cao-bang",
            "schema_invalid",
            count=3,
            commune="01273",
            station="cb-01267",
            detail="seq: field required",
        ),
        clock_skew_point(T0, "cao-bang", "01273", "cb-01267", -1500),
    ]
    storage.append(lines)
    wait_until(lambda: drained(storage), 10, what="spool drained")

    def one(q: str) -> dict:
        rows = influxdb.rows(q, DB)
        assert len(rows) == 1, (q, rows)
        return rows[0]

    row = one(f"SELECT * FROM {n.TELEMETRY} WHERE \"station\" = 'cb-01267'")
    assert (row["time"], row[n.F_BATTERY_V], row[n.F_ON_BATTERY], row[n.F_TEMP_C]) == (
        T0,
        12.4,
        True,
        35.5,
    )
    assert (row[n.F_FM_FORWARD_W], row[n.F_AUDIO_RMS_DBFS], row[n.F_SEQ]) == (28.0, -21.5, 10)
    row = one(f"SELECT * FROM {n.CLUSTER} WHERE \"cluster\" = '3'")
    assert (row[n.F_FAULT], row[n.F_RMS_DBFS], row[n.T_CLUSTER_KIND]) == (True, -30.0, "wired")
    row = one(f"SELECT * FROM {n.EVENT}")
    assert (row[n.T_CODE], row[n.F_EVENT_CLUSTER], row["time"]) == ("door_open", 3, T0 + 1)
    row = one(f"SELECT * FROM {n.BROADCAST}")
    assert (row[n.T_SOURCE], row[n.F_DURATION_S]) == ("national_relay", 60.002)
    row = one(f"SELECT * FROM {n.STATUS}")
    assert (row[n.T_STATE], row[n.F_ONLINE], row[n.F_AGENT_VERSION]) == ("online", True, "0.1.0")
    row = one(f"SELECT * FROM {n.STATION_STATE}")
    assert (row[n.T_STATE], row[n.T_CAUSE], row[n.F_OPERATING]) == ("down", "network", False)
    row = one(f"SELECT * FROM {n.INCIDENT} WHERE phase = 'close'")
    assert (row[n.F_DURATION_S], row[n.F_INCIDENT_ID]) == (90.0, f"cb-01267:{T0}")
    assert row["time"] == T0 + 90_000
    row = one(f"SELECT * FROM {n.COMPLIANCE} WHERE scope = 'commune'")
    assert (row[n.F_SHARE_PERCENT], row[n.F_NAME], row[n.F_GOAL_MET]) == (90.0, "Xã Hòa An", False)
    row = one(f"SELECT * FROM {n.INGEST_REJECT}")
    assert (row[n.T_REASON], row[n.F_COUNT]) == ("schema_invalid", 3)
    row = one(f"SELECT * FROM {n.CLOCK_SKEW}")
    assert row[n.F_SKEW_MS] == -1500
    snap = storage.snapshot()
    assert snap["points_written_total"] == len(lines) and snap["spool_depth"] == 0


def test_vietnamese_names_with_spaces_commas_and_quotes_survive(storage, influxdb):
    name = 'Xã Quảng Hòa, huyện "Quảng Uyên" = 1\\2'
    storage.append([encode_line("escape test", {"commune name": name}, {"note, x": name}, T0)])
    wait_until(lambda: drained(storage), 10, what="spool drained")
    rows = influxdb.rows('SELECT * FROM "escape test"', DB)
    assert rows == [{"time": T0, "commune name": name, "note, x": name}]


def test_replay_overwrites_the_same_point(storage, influxdb):
    ev = Event(station="s1", session=1, seq=5, ts=T0, code=EventCode.REBOOT)
    other = Event(station="s1", session=1, seq=6, ts=T0, code=EventCode.POWER_LOST)
    for _ in range(3):
        storage.append(points_for_payload(ev, "cao-bang", "01273"))
    storage.append(points_for_payload(other, "cao-bang", "01273"))
    wait_until(lambda: drained(storage), 10, what="spool drained")
    rows = influxdb.rows(f"SELECT count({n.F_SEQ}) FROM {n.EVENT} GROUP BY {n.T_CODE}", DB)
    assert sorted((r[n.T_CODE], r["count"]) for r in rows) == [("power_lost", 1), ("reboot", 1)]


def test_partial_write_keeps_good_points_and_dead_letters_the_bad_one(storage, influxdb):
    good = [encode_line("m", {"i": str(i)}, {"x": i}, T0 + i) for i in range(10)]
    storage.append(good[:1])
    wait_until(lambda: drained(storage), 10, what="x created as integer")
    bad = encode_line("m", {"i": "bad"}, {"x": 1.5}, T0 + 100)  # float into an integer field
    storage.append([*good[1:5], bad, *good[5:]])
    wait_until(lambda: drained(storage), 10, what="spool drained")
    assert influxdb.rows("SELECT count(x) FROM m", DB)[0]["count"] == 10
    dead = storage.dead_letter.read()
    assert [(d["line"], d["reason"]) for d in dead] == [(bad, "field_type_conflict")]
    assert "already exists as type integer" in dead[0]["error"]
    assert storage.snapshot()["rejects_total"] == {"field_type_conflict": 1}


def test_unparsable_line_is_isolated_and_dead_lettered(storage, influxdb):
    lines = [encode_line("p", {"i": str(i)}, {"x": i}, T0 + i) for i in range(6)]
    lines.insert(3, "p,i=oops x= 12")  # missing field value: the server cannot parse it
    storage.append(lines)
    wait_until(lambda: drained(storage), 10, what="spool drained")
    assert influxdb.rows("SELECT count(x) FROM p", DB)[0]["count"] == 6
    assert [d["line"] for d in storage.dead_letter.read()] == ["p,i=oops x= 12"]


def test_v2_api_on_influxdb_16_raises_a_clear_alarm_and_keeps_the_spool(tmp_path, influxdb):
    st = make_storage(
        tmp_path, influxdb.url, api="v2", bucket=f"{DB}/autogen", org="-", token="u:p"
    )
    st.start()
    try:
        st.append([encode_line("m", {}, {"x": 1}, T0)])
        wait_until(lambda: st.metrics.alarms_total.get("api_not_available"), 10, what="alarm")
        assert "API not available on this server (InfluxDB < 1.8?)" in st.metrics.last_error
        assert st.spool.depth == 1
    finally:
        st.stop()


def test_missing_database_alarms_then_drains_once_created(tmp_path, influxdb):
    st = make_storage(tmp_path, influxdb.url)  # create_database=True but start() not called yet
    st.config.influx.create_database = False
    st.start()
    try:
        st.append([encode_line("m", {}, {"x": 1}, T0)])
        wait_until(lambda: st.metrics.alarms_total.get("database_not_found"), 10, what="alarm")
        assert st.spool.depth == 1
        influxdb.create_database(DB)
        wait_until(lambda: drained(st), 10, what="drained after CREATE DATABASE")
        assert st.snapshot()["alarm_active"] is None
    finally:
        st.stop()


def test_dropped_database_is_recreated_when_allowed(storage, influxdb):
    storage.append([encode_line("m", {}, {"x": 1}, T0)])
    wait_until(lambda: drained(storage), 10, what="first point stored")
    influxdb.query(f'DROP DATABASE "{DB}"')
    storage.append([encode_line("m", {}, {"x": 2}, T0 + 1)])
    wait_until(lambda: drained(storage), 10, what="stored after CREATE DATABASE again")
    assert storage.metrics.alarms_total["database_not_found"] >= 1
    assert influxdb.rows("SELECT x FROM m", DB) == [{"time": T0 + 1, "x": 2}]


_value = st.text(
    alphabet=st.one_of(
        st.sampled_from(list(' ,="\\ằẠđ')), st.characters(blacklist_categories=("Cs", "Cc"))
    ),
    min_size=1,
    max_size=24,
).filter(lambda s: not _BAD_BACKSLASH.search(s))


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(tag=_value, text=_value, number=st.floats(allow_nan=False, allow_infinity=False))
def test_any_encodable_value_reads_back_unchanged(influxdb, tag, text, number):
    influxdb.create_database(DB)
    ts = T0 + abs(hash((tag, text, number))) % 10**9
    writer = V1Writer(InfluxConfig(url=influxdb.url, db=DB))
    try:
        writer.write([encode_line("fuzz", {"t": tag}, {"s": text, "f": number}, ts)])
    finally:
        writer.close()
    rows = influxdb.rows(f"SELECT * FROM fuzz WHERE time = {ts}ms AND t = '{_q(tag)}'", DB)
    assert len(rows) == 1
    # JSON may print a large float without a fraction: compare as float
    assert {**rows[0], "f": float(rows[0]["f"])} == {"time": ts, "t": tag, "s": text, "f": number}


def _q(value: str) -> str:
    """InfluxQL single-quoted string literal body."""
    return value.replace("\\", "\\\\").replace("'", "\\'")
