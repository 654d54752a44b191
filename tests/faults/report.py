"""Shared recorder of fault-case figures (issue 5).

Every case calls ``record(case, **figures)`` once per run (or once per sub-case); the hook in
``tests/faults/conftest.py`` prints all rows as a table at the end of the session and writes them
to ``bench/results/faults-<YYYY-MM-DD>.json``. Figures are reported, never asserted as timings.

Conventional figure names (use them when they apply, add others freely):
``sent``, ``stored``, ``duplicated``, ``lost``, ``dropped``, ``detect_s``, ``recover_s``,
``p50_s``, ``p95_s``, ``p99_s``, ``bound_s``, ``note``.

JSON format v1: ``{"format": "loaxa-faults/1", "date": ..., "rows": [{"case": ..., ...}]}``.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

FORMAT = "loaxa-faults/1"
_ROWS: list[dict[str, Any]] = []
_LOCK = threading.Lock()


def record(case: str, **figures: Any) -> None:
    """Append one row of figures for ``case`` (e.g. ``"f01 link flapping (fast)"``)."""
    row = {"case": case, **{k: _plain(v) for k, v in figures.items()}}
    with _LOCK:
        _ROWS.append(row)


def rows() -> list[dict[str, Any]]:
    """A copy of the rows recorded in this session, in order."""
    with _LOCK:
        return [dict(r) for r in _ROWS]


def percentiles(values: Sequence[float], *qs: float) -> list[float | None]:
    """Nearest-rank percentiles (``qs`` in 0..100); ``None`` for an empty sample."""
    if not values:
        return [None for _ in qs]
    ordered = sorted(values)
    out: list[float | None] = []
    for q in qs:
        rank = max(1, math.ceil(q / 100 * len(ordered)))
        out.append(ordered[min(rank, len(ordered)) - 1])
    return out


def _plain(value: Any) -> Any:
    """Round floats for readability; keep the rest JSON-friendly."""
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, (int, str, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)


CORE_COLUMNS = ("case", "sent", "stored", "duplicated", "lost")


def format_table(table_rows: list[dict[str, Any]]) -> str:
    """A plain-text table: the counts every case shares as columns, each case's own figures
    (delays, drops, detection seconds ...) as ``name=value`` in a last column."""
    if not table_rows:
        return "(no fault figures recorded)"
    columns = [c for c in CORE_COLUMNS if any(c in r for r in table_rows)]
    cells = [
        [_cell(r.get(c)) for c in columns]
        + [", ".join(f"{k}={_cell(v)}" for k, v in r.items() if k not in CORE_COLUMNS)]
        for r in table_rows
    ]
    columns.append("figures")
    widths = [max(len(c), *(len(line[i]) for line in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths[:-1]) + "  " + "-" * len(columns[-1]))
    lines += [
        "  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip() for line in cells
    ]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value) if not isinstance(value, (list, dict)) else json.dumps(value)


def write_json(directory: Path, table_rows: list[dict[str, Any]]) -> Path:
    """Write ``faults-<date>.json`` (atomically) and return its path."""
    directory.mkdir(parents=True, exist_ok=True)
    date = time.strftime("%Y-%m-%d")
    path = directory / f"faults-{date}.json"
    doc = {
        "format": FORMAT,
        "date": date,
        "generated_ms": int(time.time() * 1000),
        "rows": table_rows,
    }
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path
