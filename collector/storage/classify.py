"""HTTP write responses -> classified errors, and which points a 400/422 names as bad.

Shared by the v1 and v2 writers. Error bodies (1.x as seen from InfluxDB 1.6 in the tests;
2.x and 3.x as documented):

- 1.x: ``{"error":"partial write: field type conflict: input field \\"x\\" on measurement
  \\"m\\" is type float, already exists as type integer dropped=2"}`` (the good points of the
  batch ARE written), ``{"error":"unable to parse 'LINE': REASON"}``,
  ``{"error":"database not found: \\"db\\""}`` (404), ``404 page not found`` (no such API);
- 2.x: ``{"code":"invalid","message":"unable to parse 'LINE': ...","line":N}``,
  ``{"code":"not found","message":"bucket \\"b\\" not found"}``;
- 3.x (documented, not tested against a server here): ``{"error":"partial write of line protocol
  occurred","data":[{"original_line":"...","line_number":N,"error_message":"..."}]}``.
"""

from __future__ import annotations

import email.utils
import json
import re
import time
from collections.abc import Mapping, Sequence

from collector.storage.errors import (
    BatchTooLargeError,
    PartialWriteError,
    RetryableWriteError,
    WriteAlarmError,
    WriteError,
)
from collector.storage.line_protocol import LineProtocolError, field_type, split_line

_CONFLICT = re.compile(
    r'input field "(?P<field>.+?)" on measurement "(?P<measurement>.+?)" is type (?P<type>\w+)'
)
NO_V2_API = "API not available on this server (InfluxDB < 1.8?)"


def error_message(body: str) -> str:
    """The server's message from a JSON error body (1.x ``error``, 2.x ``message``) or the text."""
    try:
        doc = json.loads(body)
    except ValueError:
        return body.strip()
    if isinstance(doc, dict):
        return str(doc.get("error") or doc.get("message") or body).strip()
    return body.strip()


def _named_lines(body: str) -> tuple[tuple[int, ...], tuple[str, ...]]:
    """Lines a JSON error body names: 2.x ``{"line": N}``, 3.x ``{"data": [{"line_number": N,
    "original_line": "..."}]}`` (documented formats; 1.x names lines only in the message)."""
    try:
        doc = json.loads(body)
    except ValueError:
        return (), ()
    if not isinstance(doc, dict):
        return (), ()
    entries = [doc, *(d for d in doc.get("data") or [] if isinstance(d, dict))]
    numbers = tuple(
        v
        for e in entries
        for k in ("line", "line_number")
        if isinstance(v := e.get(k), int) and not isinstance(v, bool)
    )
    originals = tuple(str(e["original_line"]) for e in entries if e.get("original_line"))
    return numbers, originals


def retry_after_s(value: str | None) -> float | None:
    """Retry-After as seconds: delta-seconds or an HTTP date (RFC 9110 10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def classify(
    status: int, body: str, headers: Mapping[str, str], api: str = "v1"
) -> WriteError | None:
    """None for 2xx; otherwise the WriteError subclass that says what to do with the batch."""
    if 200 <= status < 300:
        return None
    msg = error_message(body)
    if status in (400, 422):
        numbers, originals = _named_lines(body)
        return PartialWriteError(f"HTTP {status}: {msg}", status, msg, numbers, originals)
    if status == 413:
        return BatchTooLargeError(f"HTTP 413: request too large: {msg}", status, msg)
    if status == 429 or status >= 500:
        after = retry_after_s(headers.get("Retry-After") or headers.get("retry-after"))
        return RetryableWriteError(f"HTTP {status}: {msg}", status, msg, after)
    if status in (401, 403):
        return WriteAlarmError(
            f"HTTP {status}: not authorised to write: {msg}", status, msg, alarm="unauthorized"
        )
    if status == 404:
        if api == "v2" and "not found" in msg and ("bucket" in msg or "org" in msg):
            return WriteAlarmError(f"HTTP 404: {msg}", status, msg, alarm="bucket_not_found")
        if "database not found" in msg:
            return WriteAlarmError(f"HTTP 404: {msg}", status, msg, alarm="database_not_found")
        return WriteAlarmError(
            f"HTTP 404: {NO_V2_API if api == 'v2' else msg}", status, msg, alarm="api_not_available"
        )
    return WriteAlarmError(
        f"HTTP {status}: unexpected response: {msg}", status, msg, alarm="unexpected_status"
    )


def bad_points(
    message: str,
    lines: Sequence[str],
    line_numbers: Sequence[int] = (),
    originals: Sequence[str] = (),
) -> dict[int, str]:
    """Indexes of the lines a 400/422 message names, with a reason tag for each.

    Parse errors quote the line itself; a field type conflict names measurement, field and
    the refused type, so the lines carrying that field with that type are the bad ones.
    Lines not named here are written again by the caller (idempotent).
    """
    bad: dict[int, str] = {}
    for number in line_numbers:
        if 1 <= number <= len(lines):
            bad[number - 1] = "rejected"
    wanted = set(originals)
    for i, line in enumerate(lines):
        if line in wanted:
            bad[i] = "rejected"
    if "unable to parse" in message:
        for i, line in enumerate(lines):
            if f"unable to parse '{line}'" in message:
                bad[i] = "parse_error"
    for m in _CONFLICT.finditer(message):
        want = m["type"]
        for i, line in enumerate(lines):
            if i in bad or f"{m['field']}=" not in line:
                continue
            try:
                measurement, _, fields, _ = split_line(line)
            except LineProtocolError:
                bad[i] = "parse_error"
                continue
            raw = fields.get(m["field"])
            if measurement == m["measurement"] and raw is not None and field_type(raw) == want:
                bad[i] = "field_type_conflict"
    return bad
