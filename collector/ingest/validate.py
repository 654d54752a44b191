"""Validation of one incoming message: pure, no I/O, the clock passed in as ``received_ms``.

Checks, in this order (cheap topic checks before JSON parsing, so a flood of garbage on a bad
topic costs little):

1. size  <= ``Limits.max_bytes`` (default ``loaxa.payloads.MAX_PAYLOAD_BYTES``)
2. topic follows scheme v1 (``loaxa.topics.parse_station_topic``), province == inventory's
3. station in the topic is in the inventory (unknown stations are reported, never stored)
4. commune in the topic == the station's commune in the inventory (else: impersonation)
5. JSON, then schema (``loaxa.payloads.ANY_PAYLOAD``)
6. ``kind`` in the topic == ``kind`` in the payload; ``station`` in the payload == topic
7. ``ts`` at most ``max_future_ms`` ahead of ``received_ms`` and at most ``max_age_ms`` old

``validate`` returns ``Accepted`` or ``Rejected(reason, detail)``; it never raises on bad input.

Hot path (the results are those of the steps above, only cheaper): a parsed topic is cached
per topic string (a fleet repeats a few topics per station); step 5 first tries the model the
topic names, which skips the union's dispatch, and falls back to ``ANY_PAYLOAD`` whenever that
does not give a payload that states the same ``kind``, so a reject keeps the union's reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from pydantic import BaseModel, ValidationError

from loaxa.payloads import ANY_PAYLOAD, MAX_PAYLOAD_BYTES, Broadcast, Event, Status, Telemetry
from loaxa.topics import Kind, TopicError, parse_station_topic

Payload = Telemetry | Event | Broadcast | Status

_MODELS: dict[Kind, type[BaseModel]] = {
    Kind.TELEMETRY: Telemetry,
    Kind.EVENT: Event,
    Kind.BROADCAST: Broadcast,
    Kind.STATUS: Status,
}
_TOPICS_MAX = 100_000  # parsed-topic cache bound: topics come from the network
_topics: dict[str, tuple[str, str, str, Kind]] = {}


class RejectReason(StrEnum):
    OVERSIZE = "oversize"
    BAD_TOPIC = "bad_topic"
    WRONG_PROVINCE = "wrong_province"
    UNKNOWN_STATION = "unknown_station"
    IMPERSONATION = "impersonation"  # topic commune differs from the inventory's
    MALFORMED = "malformed"  # not JSON (or not UTF-8)
    SCHEMA = "schema"  # JSON, but not a valid v1 payload
    KIND_MISMATCH = "kind_mismatch"
    STATION_MISMATCH = "station_mismatch"  # payload station differs from the topic's
    FUTURE_TS = "future_ts"
    TOO_OLD = "too_old"


class _StationLike(Protocol):
    @property
    def commune(self) -> str: ...


class _ProvinceLike(Protocol):
    @property
    def slug(self) -> str: ...


class InventoryView(Protocol):
    """What validation needs of ``collector.inventory.Inventory``."""

    @property
    def province(self) -> _ProvinceLike: ...

    @property
    def stations(self) -> Mapping[str, _StationLike]: ...


@dataclass(frozen=True, slots=True)
class Limits:
    max_bytes: int = MAX_PAYLOAD_BYTES
    max_future_ms: int = 5 * 60_000  # an agent clock this far ahead is wrong, not early
    max_age_ms: int = 30 * 86_400_000  # older than the agent's offline queue can hold


@dataclass(frozen=True, slots=True)
class Accepted:
    province: str
    commune: str
    station: str
    kind: Kind
    payload: Payload
    received_ms: int

    @property
    def skew_ms(self) -> int | None:
        """Receive time minus reading time: clock skew plus latency; None for backfill."""
        return None if self.payload.backfill else self.received_ms - self.payload.ts


@dataclass(frozen=True, slots=True)
class Rejected:
    reason: RejectReason
    detail: str
    station: str | None = None  # from the topic, when it could be parsed
    skew_ms: int | None = None  # for timestamp rejects: how far off the clock is


Result = Accepted | Rejected


def validate(
    topic: str, payload: bytes, received_ms: int, inventory: InventoryView, limits: Limits
) -> Result:
    if len(payload) > limits.max_bytes:
        return Rejected(
            RejectReason.OVERSIZE, f"{len(payload)} bytes > {limits.max_bytes} on {topic!r}"
        )
    parsed = _topics.get(topic)
    if parsed is None:
        try:
            parsed = parse_station_topic(topic)
        except TopicError as err:
            return Rejected(RejectReason.BAD_TOPIC, str(err))
        if len(_topics) >= _TOPICS_MAX:
            _topics.clear()
        _topics[topic] = parsed
    province, commune, station, kind = parsed
    if province != inventory.province.slug:
        return Rejected(
            RejectReason.WRONG_PROVINCE,
            f"province {province!r} is not {inventory.province.slug!r} ({topic!r})",
            station,
        )
    known = inventory.stations.get(station)
    if known is None:
        return Rejected(
            RejectReason.UNKNOWN_STATION, f"station {station!r} not in inventory", station
        )
    if known.commune != commune:
        return Rejected(
            RejectReason.IMPERSONATION,
            f"station {station!r} belongs to commune {known.commune!r}, topic says {commune!r}",
            station,
        )
    try:
        model = _parse_payload(payload, kind)
    except ValidationError as err:
        return _schema_reject(err, station)
    if model.kind != kind.value:
        return Rejected(
            RejectReason.KIND_MISMATCH,
            f"payload kind {model.kind!r} on {kind.value!r} topic",
            station,
        )
    if model.station != station:
        return Rejected(
            RejectReason.STATION_MISMATCH,
            f"payload station {model.station!r} on topic of {station!r}",
            station,
        )
    skew = received_ms - model.ts
    if -skew > limits.max_future_ms:
        return Rejected(RejectReason.FUTURE_TS, f"ts {-skew} ms in the future", station, skew)
    if skew > limits.max_age_ms:
        return Rejected(RejectReason.TOO_OLD, f"ts {skew} ms old", station, skew)
    return Accepted(province, commune, station, kind, model, received_ms)


def _parse_payload(payload: bytes, kind: Kind) -> Payload:
    """``ANY_PAYLOAD.validate_json(payload)``, trying the topic's model first."""
    try:
        model = _MODELS[kind].model_validate_json(payload)
    except ValidationError:
        model = None
    # The concrete model defaults a missing ``kind``; the union rejects it: let the union say.
    if model is None or "kind" not in model.model_fields_set:
        return ANY_PAYLOAD.validate_json(payload)
    return model  # type: ignore[return-value]


def _schema_reject(err: ValidationError, station: str) -> Rejected:
    first = err.errors(include_url=False, include_input=False)[0]
    if first["type"] == "json_invalid":
        return Rejected(RejectReason.MALFORMED, f"not JSON: {first['msg']}", station)
    where = ".".join(str(p) for p in first["loc"]) or "payload"
    extra = f" (+{err.error_count() - 1} more)" if err.error_count() > 1 else ""
    return Rejected(RejectReason.SCHEMA, f"{where}: {first['msg']}{extra}", station)
