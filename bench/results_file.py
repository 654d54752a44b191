"""Where every benchmark writes its figures: ``bench/results/<kind>-<UTC stamp>.json``."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def write_results(kind: str, data: dict, out: Path | None = None) -> Path:
    """Write ``data`` as indented JSON to ``out`` (default: a new stamped file) and say where."""
    out = out or RESULTS / f"{kind}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=2) + "\n")
    print(f"written: {out}")
    return out
