"""Flat integer form of messages, the `fields` of vectors/valid.json (FP-VEC-2).

Order: the SPEC table order of the message's fields. TELEMETRY: its 11 fixed fields
(uptime_s .. reserved), then k, then id, kind, flags, rms for each cluster. Unknown: the
payload bytes. This is what the C test compares against, field by field.
"""

from __future__ import annotations

from firmware_protocol.errors import FieldRangeError
from firmware_protocol.messages import REGISTRY, Message, Unknown
from firmware_protocol.telemetry import ClusterRecord, Telemetry


def message_fields(message: Message) -> list[int]:
    """The raw wire integers of `message` in flat vector order."""
    return [int(v) for v in message.values()]


def message_from_fields(type_code: int, fields: list[int]) -> Message:
    """Inverse of `message_fields` for message type `type_code`."""
    cls = REGISTRY.get(type_code)
    if cls is None:
        return Unknown(type_code, bytes(fields))
    if cls is Telemetry:
        return _telemetry_from_fields(fields)
    if len(fields) != len(cls.CODES):
        raise FieldRangeError(f"{cls.__name__} has {len(cls.CODES)} fields, got {len(fields)}")
    return cls(*fields)  # type: ignore[return-value]


def _telemetry_from_fields(fields: list[int]) -> Telemetry:
    n_fixed = len(Telemetry.CODES)
    if len(fields) <= n_fixed:
        raise FieldRangeError(f"Telemetry needs at least {n_fixed + 1} fields, got {len(fields)}")
    k = fields[n_fixed]
    records = fields[n_fixed + 1 :]
    if len(records) != 4 * k:
        raise FieldRangeError(f"Telemetry k={k} needs {4 * k} record fields, got {len(records)}")
    clusters = tuple(ClusterRecord(*records[i : i + 4]) for i in range(0, len(records), 4))
    return Telemetry(*fields[:n_fixed], clusters=clusters)
