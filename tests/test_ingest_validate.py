"""collector.ingest.validate: every reject reason, and the good message it must not reject."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.ingest.validate import Accepted, Limits, Rejected, RejectReason, validate
from loaxa.payloads import Event, EventCode, Telemetry, to_json
from loaxa.topics import Kind, station_topic

NOW = 1_790_000_000_000


@dataclass(frozen=True)
class _Station:
    commune: str


@dataclass(frozen=True)
class _Province:
    slug: str = "cao-bang"


@dataclass
class _Inventory:  # the two attributes validate() reads of collector.inventory.Inventory
    province: _Province = field(default_factory=_Province)
    stations: dict = field(
        default_factory=lambda: {"cb-01267": _Station("01267"), "cb-01273": _Station("01273")}
    )


INV = _Inventory()
LIMITS = Limits()
TOPIC = station_topic("cao-bang", "01267", "cb-01267", Kind.TELEMETRY)


def telemetry(**kw) -> bytes:
    fields = {"station": "cb-01267", "session": 3, "seq": 10, "ts": NOW - 500, "agent_uptime_s": 5}
    fields.update(kw)
    return to_json(Telemetry(**fields))


def check(topic: str, payload: bytes, received_ms: int = NOW) -> Accepted | Rejected:
    return validate(topic, payload, received_ms, INV, LIMITS)


def test_good_telemetry_is_accepted_with_its_skew():
    result = check(TOPIC, telemetry())
    assert isinstance(result, Accepted)
    assert (result.commune, result.station, result.kind) == ("01267", "cb-01267", Kind.TELEMETRY)
    assert result.payload.seq == 10
    assert result.skew_ms == 500


def test_backfill_has_no_skew_and_old_backfill_is_accepted():
    result = check(TOPIC, telemetry(backfill=True, ts=NOW - 86_400_000))
    assert isinstance(result, Accepted)
    assert result.skew_ms is None


def test_event_on_event_topic():
    topic = station_topic("cao-bang", "01267", "cb-01267", Kind.EVENT)
    payload = to_json(Event(station="cb-01267", session=1, seq=2, ts=NOW, code=EventCode.REBOOT))
    assert isinstance(check(topic, payload), Accepted)


BAD_CASES = {
    "oversize": (TOPIC, b"{" + b" " * LIMITS.max_bytes + b"}", RejectReason.OVERSIZE),
    "not a loaxa topic": ("other/topic", telemetry(), RejectReason.BAD_TOPIC),
    "topic version": (TOPIC.replace("/v1/", "/v2/"), telemetry(), RejectReason.BAD_TOPIC),
    "topic kind": (TOPIC.replace("telemetry", "selfie"), telemetry(), RejectReason.BAD_TOPIC),
    "other province": (
        TOPIC.replace("cao-bang", "ha-giang"),
        telemetry(),
        RejectReason.WRONG_PROVINCE,
    ),
    "unknown station": (
        station_topic("cao-bang", "01267", "cb-99999", Kind.TELEMETRY),
        telemetry(station="cb-99999"),
        RejectReason.UNKNOWN_STATION,
    ),
    "impersonation": (
        station_topic("cao-bang", "01273", "cb-01267", Kind.TELEMETRY),
        telemetry(),
        RejectReason.IMPERSONATION,
    ),
    "truncated json": (TOPIC, telemetry()[:-3], RejectReason.MALFORMED),
    "not utf-8": (TOPIC, b"\xff\xfe{}", RejectReason.MALFORMED),
    "json array": (TOPIC, b"[1, 2]", RejectReason.SCHEMA),
    "unknown key": (
        TOPIC,
        json.dumps({**json.loads(telemetry()), "colour": "red"}).encode(),
        RejectReason.SCHEMA,
    ),
    "dbfs out of range": (
        TOPIC,
        json.dumps({**json.loads(telemetry()), "audio": {"rms_dbfs": 3.0}}).encode(),
        RejectReason.SCHEMA,
    ),
    "kind mismatch": (TOPIC.replace("telemetry", "event"), telemetry(), RejectReason.KIND_MISMATCH),
    "payload of another station": (
        TOPIC,
        telemetry(station="cb-01273"),
        RejectReason.STATION_MISMATCH,
    ),
    "clock ahead": (TOPIC, telemetry(ts=NOW + LIMITS.max_future_ms + 1), RejectReason.FUTURE_TS),
    "too old": (TOPIC, telemetry(ts=NOW - LIMITS.max_age_ms - 1), RejectReason.TOO_OLD),
}


@pytest.mark.parametrize(("topic", "payload", "reason"), BAD_CASES.values(), ids=BAD_CASES.keys())
def test_bad_message_rejected_with_reason(topic, payload, reason):
    result = check(topic, payload)
    assert isinstance(result, Rejected)
    assert result.reason is reason
    assert result.detail  # a human-readable explanation for the log


def test_schema_reject_names_the_field():
    payload = json.dumps({**json.loads(telemetry()), "audio": {"rms_dbfs": 3.0}}).encode()
    result = check(TOPIC, payload)
    assert isinstance(result, Rejected)
    assert "audio.rms_dbfs" in result.detail


def test_timestamp_rejects_carry_the_skew():
    result = check(TOPIC, telemetry(ts=NOW + 3_600_000))
    assert isinstance(result, Rejected)
    assert result.skew_ms == -3_600_000


def test_every_reason_has_a_case():
    assert {case[2] for case in BAD_CASES.values()} == set(RejectReason)


@settings(max_examples=300, deadline=None)
@given(topic=st.text(max_size=80), payload=st.binary(max_size=300))
def test_arbitrary_input_never_raises(topic, payload):
    assert isinstance(check(topic, payload), Accepted | Rejected)


@settings(max_examples=200, deadline=None)
@given(payload=st.binary(max_size=300))
def test_arbitrary_payload_on_valid_topic_is_rejected(payload):
    result = check(TOPIC, payload)
    assert isinstance(result, Rejected)
