"""collector.ingest.validate's hot path (topic cache, the topic's model tried first) decides
exactly as the plain path did: the discriminated union ``ANY_PAYLOAD`` on every message."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.ingest import validate as v
from loaxa.payloads import ANY_PAYLOAD, Broadcast, Event, EventCode, Status, Telemetry, to_json
from loaxa.topics import Kind, station_topic
from tests.test_ingest_validate import INV, LIMITS, NOW

BASE = {"station": "cb-01267", "session": 3, "seq": 10, "ts": NOW - 500}
EXAMPLES = {
    Kind.TELEMETRY: json.loads(to_json(Telemetry(**BASE, agent_uptime_s=5))),
    Kind.EVENT: json.loads(to_json(Event(**BASE, code=EventCode.REBOOT, value=2))),
    Kind.BROADCAST: json.loads(to_json(Broadcast(**BASE, action="start", start_ts=NOW - 900))),
    Kind.STATUS: json.loads(to_json(Status(**BASE, state="online", agent_version="1.2"))),
}
ODD_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.floats(allow_nan=True),
    st.sampled_from([*(k.value for k in Kind), "", "on", "wired", "cb-01273", "start"]),
    st.lists(st.integers(0, 300), max_size=3),
)
KEYS = sorted({k for e in EXAMPLES.values() for k in e} | {"kind", "colour", "clusters"})


def plain(topic: str, payload: bytes):
    """validate() as it was: the union for every payload, no topic cache."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(v, "_parse_payload", lambda raw, kind: ANY_PAYLOAD.validate_json(raw))
        mp.setattr(v, "_topics", {})
        return v.validate(topic, payload, NOW, INV, LIMITS)


def same(a, b) -> bool:
    if isinstance(a, v.Accepted) and isinstance(b, v.Accepted):
        return a == b and type(a.payload) is type(b.payload)
    return a == b  # Rejected: same reason, detail, station, skew


@settings(max_examples=400, deadline=None)
@given(
    source=st.sampled_from(list(Kind)),
    topic_kind=st.sampled_from(list(Kind)),
    drop=st.lists(st.sampled_from(KEYS), max_size=2),
    change=st.dictionaries(st.sampled_from(KEYS), ODD_VALUES, max_size=2),
)
def test_same_result_as_the_union(source, topic_kind, drop, change):
    body = {k: x for k, x in EXAMPLES[source].items() if k not in drop} | change
    payload = json.dumps(body).encode()
    topic = station_topic("cao-bang", "01267", "cb-01267", topic_kind)
    assert same(v.validate(topic, payload, NOW, INV, LIMITS), plain(topic, payload))


@pytest.mark.parametrize("kind", list(Kind))
def test_every_example_is_accepted_by_its_own_model(kind):
    topic = station_topic("cao-bang", "01267", "cb-01267", kind)
    result = v.validate(topic, json.dumps(EXAMPLES[kind]).encode(), NOW, INV, LIMITS)
    assert isinstance(result, v.Accepted)
    assert result.payload.kind == kind.value


def test_missing_kind_is_a_schema_reject_as_before():
    body = {k: x for k, x in EXAMPLES[Kind.TELEMETRY].items() if k != "kind"}
    topic = station_topic("cao-bang", "01267", "cb-01267", Kind.TELEMETRY)
    result = v.validate(topic, json.dumps(body).encode(), NOW, INV, LIMITS)
    assert isinstance(result, v.Rejected)
    assert result.reason is v.RejectReason.SCHEMA
    assert same(result, plain(topic, json.dumps(body).encode()))


def test_topic_cache_keeps_only_valid_topics_and_stays_bounded(monkeypatch):
    monkeypatch.setattr(v, "_topics", {})
    monkeypatch.setattr(v, "_TOPICS_MAX", 3)
    payload = json.dumps(EXAMPLES[Kind.TELEMETRY]).encode()
    assert v.validate("not/a/topic", payload, NOW, INV, LIMITS).reason is v.RejectReason.BAD_TOPIC
    assert v._topics == {}
    for i in range(10):
        topic = station_topic("cao-bang", "01267", f"cb-{i:05d}", Kind.TELEMETRY)
        assert isinstance(v.validate(topic, payload, NOW, INV, LIMITS), v.Rejected)
        assert 1 <= len(v._topics) <= 3
    good = station_topic("cao-bang", "01267", "cb-01267", Kind.TELEMETRY)
    for _ in range(2):  # a hit decides like a miss
        assert isinstance(v.validate(good, payload, NOW, INV, LIMITS), v.Accepted)
