"""InfluxDB line protocol, formatted directly (about 3x faster than influxdb-client's ``Point``).

One line per point::

    measurement[,tag=value...] field=value[,field=value...] timestamp_ms

Escaping (InfluxDB 1.x/2.x line protocol reference):

- measurement: ``,`` and space are escaped with ``\\``;
- tag keys, tag values, field keys: ``,`` ``=`` and space are escaped;
- string field values are double-quoted; ``"`` and ``\\`` inside are escaped.

Tags are sorted by key (InfluxDB's own canonical order, so a line is byte-identical for the same
point whatever order the caller used). Values: ``int`` -> ``12i``, ``float`` -> shortest repr,
``bool`` -> ``true``/``false``, ``str`` -> quoted. ``None`` fields are omitted, ``None`` or empty
tags are omitted. Timestamps are integer milliseconds (writes use ``precision=ms``).

``split_line`` is the inverse used to pick a rejected point out of a batch (partial writes).
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable, Mapping, Sequence

from collector.storage.errors import LineProtocolError

FieldValue = int | float | bool | str

_MEASUREMENT = str.maketrans({",": "\\,", " ": "\\ "})
_KEY = str.maketrans({",": "\\,", "=": "\\=", " ": "\\ "})
_STRING = str.maketrans({'"': '\\"', "\\": "\\\\"})
# Cannot be encoded in measurement names, keys or tag values:
_FORBIDDEN = ("\n", "\r", "\t")
_BAD_BACKSLASH = re.compile(r"\\([ ,=\\]|$)")


def _check_name(kind: str, value: str) -> str:
    if not isinstance(value, str):
        raise LineProtocolError(f"{kind} {value!r} is not a string")
    if not value:
        raise LineProtocolError(f"empty {kind}")
    if any(c in value for c in _FORBIDDEN):
        raise LineProtocolError(f"{kind} {value!r} contains a newline/tab (not encodable)")
    if _BAD_BACKSLASH.search(value):
        # InfluxDB does not unescape "\\": a backslash before , = space \ or at the end would
        # change how the line splits.
        raise LineProtocolError(
            f"{kind} {value!r} has a backslash at the end or before , = space (not encodable)"
        )
    return value


def _valid(value: str) -> bool:
    return (
        isinstance(value, str)
        and bool(value)
        and not any(c in value for c in _FORBIDDEN)
        and ("\\" not in value or not _BAD_BACKSLASH.search(value))
    )


# Keys and tag values come from small vocabularies: escape each once (most of the encode time).
@functools.lru_cache(maxsize=65536)
def _escaped_key(value: str) -> str | None:
    return value.translate(_KEY) if _valid(value) else None


@functools.lru_cache(maxsize=1024)
def _escaped_measurement(value: str) -> str | None:
    return value.translate(_MEASUREMENT) if _valid(value) else None


def _key(kind: str, value: str) -> str:
    escaped = _escaped_key(value)
    if escaped is None:
        _check_name(kind, value)  # raises the specific error
    return escaped  # type: ignore[return-value]


def format_value(key: str, value: FieldValue) -> str:
    t = type(value)
    if t is float:
        if value != value or value in (math.inf, -math.inf):  # NaN, +-inf
            raise LineProtocolError(f"field {key!r} is {value} (InfluxDB stores finite floats)")
        return repr(value)
    if t is bool:  # before int: bool is an int subclass
        return "true" if value else "false"
    if t is int:
        return f"{value}i"
    if t is str:
        if "\n" in value or "\r" in value:
            # Accepted by the parser inside quotes, but breaks line-based tools (dead-letter, curl).
            value = value.replace("\r", " ").replace("\n", " ")
        if '"' in value or "\\" in value:
            value = value.translate(_STRING)
        return f'"{value}"'
    if isinstance(value, bool | int | float | str):  # subclasses (IntEnum, StrEnum...)
        base = (
            bool
            if isinstance(value, bool)
            else next(b for b in (int, float, str) if isinstance(value, b))
        )
        return format_value(key, base(value))
    raise LineProtocolError(f"field {key!r} has unsupported type {type(value).__name__}")


def encode_line(
    measurement: str,
    tags: Mapping[str, str | None],
    fields: Mapping[str, FieldValue | None],
    ts_ms: int,
) -> str:
    """One line of line protocol; LineProtocolError if it cannot be encoded (no fields...)."""
    head = _escaped_measurement(measurement)
    if head is None:
        _check_name("measurement", measurement)
    parts = [head]
    for key in sorted(tags):
        value = tags[key]
        if value is None or value == "":
            continue
        parts.append(
            f",{_escaped_key(key) or _key('tag key', key)}="
            f"{_escaped_key(value) or _key(f'tag {key!r}', value)}"
        )
    body = ",".join(
        f"{_escaped_key(k) or _key('field key', k)}={format_value(k, v)}"
        for k, v in fields.items()
        if v is not None
    )
    if not body:
        raise LineProtocolError(f"{measurement}: a point needs at least one field")
    if type(ts_ms) is not int or ts_ms < 0:
        raise LineProtocolError(f"{measurement}: timestamp {ts_ms!r} is not an int of ms >= 0")
    parts.append(f" {body} {ts_ms}")
    return "".join(parts)


# encode_point: the series part (measurement + tags) of each distinct series encoded once, and
# each field key's "key=" prefix once. A fleet's lines repeat a few thousand series and a few
# dozen field keys; each cache is cleared when it grows past its bound.
_SERIES_MAX = 200_000
_series_heads: dict[tuple[str, tuple[tuple[str, str | None], ...]], str] = {}
_PROBE_TAIL = " _=true 0"
_FIELD_KEYS_MAX = 65_536
_field_prefixes: dict[str, str] = {}


def _field_prefix(key: str) -> str:
    prefix = _field_prefixes.get(key)
    if prefix is None:
        prefix = f"{_escaped_key(key) or _key('field key', key)}="
        if len(_field_prefixes) >= _FIELD_KEYS_MAX:
            _field_prefixes.clear()
        _field_prefixes[key] = prefix
    return prefix


def _series_head(measurement: str, tags: tuple[tuple[str, str | None], ...]) -> str:
    key = (measurement, tags)
    head = _series_heads.get(key)
    if head is None:
        head = encode_line(measurement, dict(tags), {"_": True}, 0)[: -len(_PROBE_TAIL)]
        if len(_series_heads) >= _SERIES_MAX:
            _series_heads.clear()
        _series_heads[key] = head
    return head


def encode_point(
    measurement: str,
    tags: tuple[tuple[str, str | None], ...],
    fields: Mapping[str, FieldValue | None],
    ts_ms: int,
) -> str:
    """``encode_line`` for the hot path (the same line and the same errors), with ``tags`` as
    a tuple of pairs so the encoded series can be looked up; common value types inline."""
    keys = [k for k, v in fields.items() if v is not None]  # a None field's key is not written
    return encode_values(measurement, tags, field_prefixes(keys), [fields[k] for k in keys], ts_ms)


def field_prefixes(keys: Iterable[str]) -> tuple[str, ...]:
    """The ``key=`` part of each field key, for ``encode_values`` (computed once per key)."""
    return tuple(_field_prefixes.get(k) or _field_prefix(k) for k in keys)


def encode_values(
    measurement: str,
    tags: tuple[tuple[str, str | None], ...],
    prefixes: tuple[str, ...],
    values: Sequence[FieldValue | None],
    ts_ms: int,
) -> str:
    """``encode_point`` with the fields as ``field_prefixes(keys)`` and their values in the
    same order: a caller with a fixed field set builds no dict per point."""
    head = _series_heads.get((measurement, tags)) or _series_head(measurement, tags)
    body = []
    for prefix, v in zip(prefixes, values, strict=True):
        if v is None:
            continue
        t = type(v)
        if t is float and v - v == 0.0:  # finite (inf - inf and nan - nan are nan)
            body += (prefix, repr(v), ",")
        elif t is bool:
            body += (prefix, "true," if v else "false,")
        elif t is int:
            body += (prefix, str(v), "i,")
        else:  # strings, enums, refusals (the message names the escaped key)
            body += (prefix, format_value(prefix[:-1], v), ",")
    if not body:
        raise LineProtocolError(f"{measurement}: a point needs at least one field")
    if type(ts_ms) is not int or ts_ms < 0:
        raise LineProtocolError(f"{measurement}: timestamp {ts_ms!r} is not an int of ms >= 0")
    body[-1] = body[-1][:-1]  # the last field's ","
    return f"{head} {''.join(body)} {ts_ms}"


def _split_unescaped(text: str, sep: str) -> list[str]:
    """Split on ``sep`` not preceded by a backslash (measurement, tag and key sections)."""
    parts, start, i = [], 0, 0
    while i < len(text):
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c == sep:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    parts.append(text[start:])
    return parts


def _unescape(text: str) -> str:
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text) and text[i + 1] in ',= "\\':
            out.append(text[i + 1])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def field_type(raw: str) -> str:
    """InfluxDB type name of a raw field value: integer, float, boolean or string."""
    if raw.startswith('"'):
        return "string"
    if raw.endswith("i") or raw.endswith("u"):
        return "integer" if raw.endswith("i") else "unsigned"
    if raw in ("t", "T", "true", "True", "TRUE", "f", "F", "false", "False", "FALSE"):
        return "boolean"
    return "float"


def split_line(line: str) -> tuple[str, dict[str, str], dict[str, str], str]:
    """(measurement, tags, raw field values keyed by name, timestamp) of one of our lines."""
    key_and_rest = _split_unescaped(line, " ")
    key, rest = key_and_rest[0], " ".join(key_and_rest[1:])
    fields, _, ts = rest.rpartition(" ")  # we always write a timestamp, which has no spaces
    if not fields or not ts.isdigit():
        raise LineProtocolError(f"not a line with fields and a timestamp: {line[:200]!r}")
    head = _split_unescaped(key, ",")
    tags = {}
    for pair in head[1:]:
        k, v = _partition_escaped(pair)
        tags[_unescape(k)] = _unescape(v)
    parsed = {_unescape(k): v for k, v in _split_fields(fields)}
    return _unescape(head[0]), tags, parsed, ts


def _split_fields(text: str) -> list[tuple[str, str]]:
    """Field pairs; a quote only opens a string at the start of a value (as InfluxDB parses)."""
    pairs, key, start, i = [], None, 0, 0
    while i < len(text):
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if key is None and c == "=":
            key, start = text[start:i], i + 1
            if text[start : start + 1] == '"':  # skip the quoted string
                i = start + 1
                while i < len(text) and text[i] != '"':
                    i += 2 if text[i] == "\\" else 1
        elif key is not None and c == ",":
            pairs.append((key, text[start:i]))
            key, start = None, i + 1
        i += 1
    if key is None:
        raise LineProtocolError(f"field without a value in {text[:200]!r}")
    pairs.append((key, text[start:]))
    return pairs


def _partition_escaped(pair: str) -> tuple[str, str]:
    parts = _split_unescaped(pair, "=")
    return parts[0], "=".join(parts[1:])
