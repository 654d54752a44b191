"""What Grafana does to a panel's InfluxQL before and after running it, for checking the
dashboards against a real InfluxDB without Grafana (tests, ``make demo``).

Before: ``$timeFilter`` becomes ``time >= <from>ms and time <= <to>ms``, ``${__from}`` and
``${__to}`` the range in epoch ms, ``$__interval`` the interval Grafana picked, and template
variables are formatted for regex (a multi-value becomes ``(a|b)`` with each value
regex-escaped) or as plain text. After: the ``joinByField`` and ``sortBy`` transformations the
dashboards use, applied to rows of dicts.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from dashboards.grafana import Json

Row = dict[str, Any]


def _regex_value(values: Sequence[str]) -> str:
    escaped = [re.escape(v) for v in values]
    return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"


def interpolate(
    query: str,
    from_ms: int,
    to_ms: int,
    interval: str = "1m",
    variables: Mapping[str, str | Sequence[str]] | None = None,
) -> str:
    """The query Grafana sends for the time range [from_ms, to_ms] and these variables."""
    out = query.replace("$timeFilter", f"time >= {from_ms}ms and time <= {to_ms}ms")
    out = out.replace("$__interval", interval)
    out = out.replace("${__from}", str(from_ms)).replace("${__to}", str(to_ms))
    # Longest names first, so $station is not replaced inside $stations.
    for name in sorted(variables or {}, key=len, reverse=True):
        value = (variables or {})[name]
        values = [value] if isinstance(value, str) else list(value)
        regex = _regex_value(values)
        out = re.sub(rf"/\^\${name}\$/", lambda _m, r=regex: f"/^{r}$/", out)
        out = out.replace(f"${{{name}}}", ",".join(values)).replace(f"${name}", ",".join(values))
    if re.search(r"\$(?!tag_)\{?\w", out):
        raise ValueError(f"uninterpolated variable left in {out!r}")
    return out


def join_by_field(frames: Sequence[list[Row]], field: str, mode: str = "outer") -> list[Row]:
    """Grafana's "Join by field": rows sharing ``field`` merged; clashing names get " 1", " 2"
    (by frame). ``inner`` keeps keys present in every frame."""
    names = [set().union(*(r.keys() for r in rows)) if rows else set() for rows in frames]
    clash = {k for i, a in enumerate(names) for b in names[i + 1 :] for k in a & b} - {field}
    merged: dict[Any, Row] = {}
    seen: dict[Any, int] = {}
    for i, rows in enumerate(frames, start=1):
        for row in rows:
            key = row.get(field)
            target = merged.setdefault(key, {field: key})
            for k, v in row.items():
                if k != field:
                    target[f"{k} {i}" if k in clash else k] = v
            seen[key] = seen.get(key, 0) | (1 << i)
    full = sum(1 << i for i in range(1, len(frames) + 1))
    return [r for key, r in merged.items() if mode != "inner" or seen[key] == full]


def sort_rows(rows: list[Row], field: str, desc: bool = False) -> list[Row]:
    """Grafana's "Sort by": missing values last."""
    present = [r for r in rows if r.get(field) is not None]
    missing = [r for r in rows if r.get(field) is None]
    return sorted(present, key=lambda r: r[field], reverse=desc) + missing


def panel_queries(dashboard: Json) -> Iterator[tuple[str, str]]:
    """(where, InfluxQL) of every query a dashboard runs: panels, variables, annotations."""
    for panel in dashboard["panels"]:
        for t in panel.get("targets", []):
            yield f"panel {panel['title']!r} {t['refId']}", t["query"]
    for var in dashboard["templating"]["list"]:
        if var["type"] == "query":
            yield f"variable {var['name']}", var["query"]
    for anno in dashboard["annotations"]["list"]:
        query = anno.get("target", {}).get("query")
        if query:
            yield f"annotation {anno['name']!r}", query
