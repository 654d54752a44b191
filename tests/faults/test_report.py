"""The recorder itself: rows, percentiles, table and JSON file."""

from __future__ import annotations

import json

from tests.faults import report


def test_percentiles_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert report.percentiles(values, 50, 95, 99) == [50.0, 95.0, 99.0]
    assert report.percentiles([], 50) == [None]


def test_table_and_json(tmp_path) -> None:
    rows = [{"case": "a", "sent": 3, "p50_s": 0.12345}, {"case": "b", "lost": 0}]
    table = report.format_table(rows)
    assert "sent" in table and "lost" in table and "0.123" in table
    path = report.write_json(tmp_path, rows)
    doc = json.loads(path.read_text())
    assert doc["format"] == report.FORMAT and doc["rows"] == rows
