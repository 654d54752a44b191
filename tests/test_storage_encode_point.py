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


def test_telemetry_lines_as_through_encode_line(monkeypatch):
    """telemetry_points through encode_point == through encode_line (its former encoder)."""
    from bench.ingest_load import telemetry  # realistic readings, both clusters
    from collector.storage import points

    rng = random.Random(1)
    payloads = [telemetry(i % 7, i, 1_790_000_000_000 + i, rng) for i in range(300)]
    fast = [points.telemetry_points(p, "cao-bang", "01273") for p in payloads]
    monkeypatch.setattr(
        points, "encode_point", lambda m, tags, fields, ts: encode_line(m, dict(tags), fields, ts)
    )
    assert fast == [points.telemetry_points(p, "cao-bang", "01273") for p in payloads]


def test_bad_float_refused():
    with pytest.raises(LineProtocolError):
        encode_point("m", (("t", "v"),), {"f": float("nan")}, 1)
