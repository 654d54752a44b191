"""Line-protocol encoder and payload -> points, without a server (fast unit tests)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.health.events import Cause, Incident, State
from collector.storage import names as n
from collector.storage.classify import bad_points, classify, retry_after_s
from collector.storage.errors import (
    BatchTooLargeError,
    LineProtocolError,
    PartialWriteError,
    RetryableWriteError,
    WriteAlarmError,
)
from collector.storage.line_protocol import _BAD_BACKSLASH, encode_line, field_type, split_line
from collector.storage.points import (
    availability_point,
    compliance_point,
    incident_point,
    points_for_payload,
    reject_point,
    state_point,
    station_info_point,
)
from loaxa.payloads import Audio, Cluster, Event, EventCode, Fm, Power, Telemetry


def test_escaping_of_measurement_tags_fields_and_strings():
    line = encode_line(
        "m x,y", {"b key": "Cao Bằng, x=1", "a": "plain"}, {"f=1": 'say "hi" \\ now'}, 1700
    )
    assert (
        line == 'm\\ x\\,y,a=plain,b\\ key=Cao\\ Bằng\\,\\ x\\=1 f\\=1="say \\"hi\\" \\\\ now" 1700'
    )


def test_value_types_and_omitted_nones():
    line = encode_line(
        "m", {"t": None, "u": ""}, {"i": 3, "f": 2.0, "b": True, "s": "x", "none": None}, 5
    )
    assert line == 'm i=3i,f=2.0,b=true,s="x" 5'


@pytest.mark.parametrize(
    ("measurement", "tags", "fields", "ts", "words"),
    [
        ("m", {}, {}, 1, "at least one field"),
        ("m", {}, {"f": math.nan}, 1, "finite"),
        ("m", {"t": "a\nb"}, {"f": 1}, 1, "newline"),
        ("m", {"t": "ends\\"}, {"f": 1}, 1, "backslash"),
        ("m", {"t": "a\\,b"}, {"f": 1}, 1, "backslash"),
        ("", {}, {"f": 1}, 1, "empty measurement"),
        ("m", {}, {"f": [1]}, 1, "unsupported type"),
        ("m", {}, {"f": 1}, -5, "timestamp"),
    ],
)
def test_unencodable_points_raise_a_specific_error(measurement, tags, fields, ts, words):
    with pytest.raises(LineProtocolError, match=words):
        encode_line(measurement, tags, fields, ts)


_text = st.text(
    alphabet=st.one_of(
        st.sampled_from(list(' ,="\\ằ')), st.characters(blacklist_categories=("Cs", "Cc"))
    ),
    min_size=1,
    max_size=20,
).filter(lambda s: not _BAD_BACKSLASH.search(s))


@given(
    measurement=_text,
    tags=st.dictionaries(_text, _text, max_size=4),
    fields=st.dictionaries(
        _text,
        st.one_of(
            st.integers(), st.booleans(), _text, st.floats(allow_nan=False, allow_infinity=False)
        ),
        min_size=1,
        max_size=4,
    ),
    ts=st.integers(min_value=0, max_value=2**62),
)
def test_split_line_inverts_encode_line(measurement, tags, fields, ts):
    line = encode_line(measurement, tags, fields, ts)
    m, t, f, stamp = split_line(line)
    assert (m, t, stamp) == (measurement, tags, str(ts))
    assert list(f) == list(fields)
    for key, value in fields.items():
        want = {bool: "boolean", int: "integer", float: "float", str: "string"}[type(value)]
        assert field_type(f[key]) == want


def _telemetry(**kw) -> Telemetry:
    base = dict(
        station="cb-01267",
        session=3,
        seq=41,
        ts=1_700_000_000_123,
        agent_uptime_s=60,
        audio=Audio(rms_dbfs=-20, peak_dbfs=-3.5),
        power=Power(mains_v=220, battery_v=12.6),
        temp_c=31,
        fm=Fm(forward_w=30, reflected_w=1.5),
        clusters=[
            Cluster(id=1, kind="wired", relay_on=True, rms_dbfs=-18),
            Cluster(id=2, kind="fm", relay_on=False),
        ],
    )
    base.update(kw)
    return Telemetry(**base)


def test_telemetry_gives_one_station_point_and_one_per_cluster_with_floats_as_floats():
    lines = points_for_payload(_telemetry(), "cao-bang", "01273")
    assert len(lines) == 3
    m, tags, fields, ts = split_line(lines[0])
    assert (m, ts) == (n.TELEMETRY, "1700000000123")
    assert tags == {"province": "cao-bang", "commune": "01273", "station": "cb-01267"}
    # ints from JSON for float fields must still be floats, or InfluxDB sees a type conflict
    for key in (n.F_AUDIO_RMS_DBFS, n.F_MAINS_V, n.F_TEMP_C, n.F_FM_FORWARD_W):
        assert field_type(fields[key]) == "float", key
    assert fields[n.F_SEQ] == "41i"
    cm, ctags, _, _ = split_line(lines[2])
    assert cm == n.CLUSTER and ctags[n.T_CLUSTER] == "2" and ctags[n.T_CLUSTER_KIND] == "fm"


def test_replayed_message_gives_identical_lines():
    first = points_for_payload(_telemetry(), "cao-bang", "01273")
    replay = points_for_payload(_telemetry(), "cao-bang", "01273")
    assert first == replay


def test_two_events_in_one_ms_have_distinct_keys():
    a = Event(station="s1", session=1, seq=1, ts=5, code=EventCode.POWER_LOST)
    b = Event(station="s1", session=1, seq=2, ts=5, code=EventCode.DOOR_OPEN)
    keys = {line.rsplit(" ", 2)[0] for p in (a, b) for line in points_for_payload(p, "p", "c")}
    assert len(keys) == 2


def test_health_points_tags_and_fields():
    inc = Incident(
        id="s1:10",
        station="s1",
        commune="01273",
        state=State.DOWN,
        cause=Cause.POWER,
        opened_ms=10,
        closed_ms=70_010,
    )
    m, tags, fields, ts = split_line(incident_point(inc, "cao-bang", "close"))
    assert (m, tags[n.T_PHASE], tags[n.T_CAUSE], ts) == (n.INCIDENT, "close", "power", "70010")
    assert fields[n.F_DURATION_S] == "70.0" and fields[n.F_INCIDENT_ID] == '"s1:10"'
    with pytest.raises(ValueError, match="needs ts_ms"):
        incident_point(inc, "cao-bang", "reclassified")
    _, tags, fields, _ = split_line(state_point(1, "p", "c", "s", State.LINK_DOWN, link_down=True))
    assert tags[n.T_STATE] == "link_down" and fields[n.F_OPERATING] == "true"
    _, tags, fields, _ = split_line(compliance_point(1, "p", None, 3, 4, goal_percent=100))
    assert tags[n.T_SCOPE] == "province" and fields[n.F_SHARE_PERCENT] == "75.0"
    assert fields[n.F_GOAL_MET] == "false"
    with pytest.raises(ValueError, match="reject reason"):
        reject_point(1, "p", "Bad Reason!")


def test_classification_of_statuses():
    assert classify(204, "", {}) is None
    assert isinstance(classify(400, '{"error":"unable to parse"}', {}), PartialWriteError)
    assert isinstance(classify(422, '{"message":"x"}', {}), PartialWriteError)
    assert isinstance(classify(413, "", {}), BatchTooLargeError)
    err = classify(429, "", {"Retry-After": "7"})
    assert isinstance(err, RetryableWriteError) and err.retry_after_s == 7.0
    assert isinstance(classify(503, "", {}), RetryableWriteError)
    err = classify(404, "404 page not found\n", {}, api="v2")
    assert isinstance(err, WriteAlarmError) and "InfluxDB < 1.8?" in str(err)
    err = classify(401, '{"error":"authorization failed"}', {})
    assert isinstance(err, WriteAlarmError) and err.alarm == "unauthorized"
    assert retry_after_s("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


def test_bad_points_named_by_a_type_conflict_or_parse_error():
    lines = ["m,a=1 x=1.5 1", "m,a=2 x=2i 2", "n,a=3 x=1.5 3", "bad"]
    msg = (
        'partial write: field type conflict: input field "x" on measurement "m" is type '
        "float, already exists as type integer dropped=1"
    )
    assert bad_points(msg, lines) == {0: "field_type_conflict"}
    assert bad_points("unable to parse 'bad': missing fields", lines) == {3: "parse_error"}


def test_dashboard_feed_points():
    line = availability_point(
        10,
        "p",
        "c",
        None,
        period_start_ms=0,
        operating_ms=3000,
        down_ms=1000,
        maintenance_ms=500,
        unknown_ms=0,
    )
    _, tags, fields, _ = split_line(line)
    assert tags[n.T_SCOPE] == "commune" and n.T_STATION not in tags
    assert fields[n.F_PERCENT] == "75.0" and fields[n.F_MAINTENANCE_S] == "0.5"
    nothing = availability_point(
        10,
        "p",
        "c",
        "s",
        period_start_ms=0,
        operating_ms=0,
        down_ms=0,
        maintenance_ms=0,
        unknown_ms=10,
    )
    assert n.F_PERCENT not in split_line(nothing)[2]
    info = station_info_point(
        1,
        "p",
        "c",
        "s",
        station_name="Nà Lẹng, Hòa An",
        commune_name="Hòa An",
        lat=22,
        lon=106,
        required=False,
        position="demo",
        technician="",
        phone=None,
    )
    _, _, fields, _ = split_line(info)
    assert fields[n.F_LAT] == "22.0" and n.F_PHONE not in fields and n.F_TECHNICIAN not in fields


def test_tags_are_only_the_bounded_names_of_names_py():
    """Cardinality guard: every tag key any encoder writes is a T_* name (never seq, ids, ts)."""
    allowed = {v for k, v in vars(n).items() if k.startswith("T_")}
    inc = Incident(
        id="s:1",
        station="s",
        commune="c",
        state=State.DOWN,
        cause=Cause.UNKNOWN,
        opened_ms=1,
        closed_ms=2,
        upstream="gw-1",
    )
    lines = [
        *points_for_payload(_telemetry(), "p", "c"),
        *points_for_payload(
            Event(
                station="s", session=1, seq=2, ts=3, code="reboot", cluster=1, value=4, raw_code=9
            ),
            "p",
            "c",
        ),
        state_point(1, "p", "c", "s", State.DOWN, Cause.POWER),
        incident_point(inc, "p", "close"),
        compliance_point(1, "p", "c", 1, 2, 100.0, name="x"),
        reject_point(1, "p", "bad_json", station="s", commune="c", detail="d"),
        availability_point(
            1,
            "p",
            "c",
            "s",
            period_start_ms=0,
            operating_ms=1,
            down_ms=0,
            maintenance_ms=0,
            unknown_ms=0,
        ),
        station_info_point(
            1,
            "p",
            "c",
            "s",
            station_name="n",
            commune_name="c",
            lat=1,
            lon=2,
            required=True,
            position="demo",
        ),
    ]
    used = {key for line in lines for key in split_line(line)[1]}
    assert used <= allowed, used - allowed
    assert not used & {"seq", "session", "ts", "incident_id", "id", "value"}
