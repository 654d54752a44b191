"""Minimal InfluxQL client over the v1 ``/query`` endpoint (InfluxDB 1.x; 2.x/3.x through their
v1 compatibility API), streaming ``chunked=true`` responses so a year of rows never sits in one
JSON document. Authentication: v1 user/password (HTTP basic) or a token (``Authorization:
Token ...``, the 2.x/3.x v1-compat scheme).
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

from collector.export.errors import SourceError

Row = dict[str, object]


@dataclass(frozen=True)
class InfluxReader:
    url: str
    db: str
    user: str | None = None
    password: str | None = None
    token: str | None = None
    timeout_s: float = 60.0
    chunk_size: int = 20_000

    def _request(self, q: str) -> urllib.request.Request:
        params = {
            "db": self.db,
            "q": q,
            "epoch": "ms",
            "chunked": "true",
            "chunk_size": str(self.chunk_size),
        }
        req = urllib.request.Request(
            f"{self.url.rstrip('/')}/query",
            data=urllib.parse.urlencode(params).encode(),
            method="POST",
        )
        if self.token:
            req.add_header("Authorization", f"Token {self.token}")
        elif self.user:
            cred = f"{self.user}:{self.password or ''}".encode()
            req.add_header("Authorization", "Basic " + base64.b64encode(cred).decode())
        return req

    def rows(self, q: str) -> Iterator[Row]:
        """Each result row as a dict of its columns plus its series' tags (GROUP BY)."""
        try:
            with urllib.request.urlopen(self._request(q), timeout=self.timeout_s) as resp:
                for line in resp:
                    if line.strip():
                        yield from _chunk_rows(line, q)
        except urllib.error.HTTPError as err:
            body = err.read(500).decode("utf-8", "replace")
            raise SourceError(
                f"InfluxDB {self.url} refused the query ({err.code}): {body}"
            ) from err
        except (urllib.error.URLError, OSError) as err:
            raise SourceError(f"InfluxDB {self.url} unreachable: {err}") from err


def _chunk_rows(line: bytes, q: str) -> Iterator[Row]:
    try:
        doc = json.loads(line)
    except json.JSONDecodeError as err:
        raise SourceError(f"InfluxDB answered with invalid JSON for {q[:80]!r}") from err
    if "error" in doc:
        raise SourceError(f"InfluxDB error for {q[:80]!r}: {doc['error']}")
    for result in doc.get("results", []):
        if "error" in result:
            raise SourceError(f"InfluxQL error for {q[:80]!r}: {result['error']}")
        for series in result.get("series", []):
            cols, tags = series["columns"], series.get("tags", {})
            for values in series.get("values", []):
                row = dict(zip(cols, values, strict=True))
                row.update(tags)
                yield row


def quote_string(value: str) -> str:
    """An InfluxQL string literal: single quotes, backslash and quote escaped."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
