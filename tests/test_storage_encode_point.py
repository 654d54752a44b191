"""encode_point (series cached, common types inline) writes exactly what encode_line writes,
and refuses exactly what it refuses, for any names and values (hypothesis)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.storage.errors import LineProtocolError
from collector.storage.line_protocol import encode_line, encode_point

NAMES = st.text(alphabet='ab ,=\\"\n_x1', min_size=0, max_size=6)
VALUES = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1), st.floats(), NAMES)
TAGS = st.lists(st.tuples(NAMES, st.one_of(st.none(), NAMES)), max_size=4, unique_by=lambda t: t[0])


def outcome(fn, *args):
    try:
        return fn(*args)
    except LineProtocolError as err:
        return ("error", type(err))


@settings(max_examples=500, deadline=None)
@given(NAMES, TAGS, st.dictionaries(NAMES, VALUES, max_size=5), st.integers(-5, 2**45))
def test_same_line_or_same_refusal(measurement, tags, fields, ts):
    expected = outcome(encode_line, measurement, dict(tags), fields, ts)
    assert outcome(encode_point, measurement, tuple(tags), fields, ts) == expected
    assert outcome(encode_point, measurement, tuple(tags), fields, ts) == expected  # cached


def reference_telemetry_lines(p, province: str, commune: str) -> list[str]:
    """telemetry_points as first written: a dict of fields per point, through encode_line."""
    from collector.storage import names as n

    def f(x):
        return None if x is None else float(x)

    tags = {n.T_PROVINCE: province, n.T_COMMUNE: commune, n.T_STATION: p.station}
    a, pw = p.audio, p.power
    fields = {
        n.F_CONTROLLER_OK: p.controller == "ok",
        n.F_UPTIME_S: p.uptime_s,
        n.F_AGENT_UPTIME_S: p.agent_uptime_s,
        n.F_AMP: p.amp.value,
        n.F_AUDIO_RMS_DBFS: f(a.rms_dbfs),
        n.F_AUDIO_PEAK_DBFS: f(a.peak_dbfs),
        n.F_AUDIO_CLIP_RATIO: f(a.clip_ratio),
        n.F_AUDIO_SILENT: a.silent,
        n.F_AUDIO_SOURCE: a.source,
        n.F_ACOUSTIC_DBFS: f(a.acoustic_dbfs),
        n.F_ACOUSTIC_CORR: f(a.acoustic_corr),
        n.F_MAINS_V: f(pw.mains_v),
        n.F_BATTERY_V: f(pw.battery_v),
        n.F_ON_BATTERY: pw.on_battery,
        n.F_TEMP_C: f(p.temp_c),
        n.F_FM_FORWARD_W: f(p.fm.forward_w) if p.fm else None,
        n.F_FM_REFLECTED_W: f(p.fm.reflected_w) if p.fm else None,
        n.F_CLUSTERS: len(p.clusters),
        n.F_SESSION: p.session,
        n.F_SEQ: p.seq,
        n.F_BACKFILL: p.backfill,
    }
    lines = [encode_line(n.TELEMETRY, tags, fields, p.ts)]
    for c in p.clusters:
        ctags = {**tags, n.T_CLUSTER: str(c.id), n.T_CLUSTER_KIND: c.kind.value}
        cfields = {
            n.F_RELAY_ON: c.relay_on,
            n.F_FAULT: c.fault,
            n.F_FEED_OK: c.feed_ok,
            n.F_RMS_DBFS: f(c.rms_dbfs),
        }
        lines.append(encode_line(n.CLUSTER, ctags, cfields, p.ts))
    return lines


def test_telemetry_lines_as_through_encode_line():
    """telemetry_points (encode_values, fixed field order) == the dict + encode_line version."""
    from bench.ingest_load import telemetry  # realistic readings, both clusters
    from collector.storage import points
    from loaxa.payloads import Audio, Fm, Power, Telemetry

    rng = random.Random(1)
    payloads = [telemetry(i % 7, i, 1_790_000_000_000 + i, rng) for i in range(300)]
    payloads.append(  # every optional field set, and every one unset
        Telemetry(
            station="cb-1",
            session=1,
            seq=2,
            ts=3,
            agent_uptime_s=4,
            uptime_s=5,
            temp_c=-3,
            audio=Audio(rms_dbfs=-1, peak_dbfs=0, acoustic_dbfs=-50, acoustic_corr=0.5),
            power=Power(mains_v=0, battery_v=12.5, on_battery=True),
            fm=Fm(forward_w=10, reflected_w=0.5),
            backfill=True,
        )
    )
    payloads.append(Telemetry(station="cb-1", session=0, seq=0, ts=0, agent_uptime_s=0))
    for p in payloads:
        assert points.telemetry_points(p, "cao-bang", "01273") == reference_telemetry_lines(
            p, "cao-bang", "01273"
        )


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(NAMES, VALUES), max_size=5, unique_by=lambda kv: kv[0]),
    st.integers(-5, 2**45),
)
def test_encode_values_as_encode_point(pairs, ts):
    from collector.storage.line_protocol import encode_values, field_prefixes

    fields = dict(pairs)
    expected = outcome(encode_line, "m", {"t": "v"}, fields, ts)
    try:
        prefixes = field_prefixes(k for k, v in pairs if v is not None)
    except LineProtocolError as err:
        assert expected == ("error", type(err))
        return
    values = [v for _, v in pairs if v is not None]
    assert outcome(encode_values, "m", (("t", "v"),), prefixes, values, ts) == expected


def test_bad_float_refused():
    with pytest.raises(LineProtocolError):
        encode_point("m", (("t", "v"),), {"f": float("nan")}, 1)
