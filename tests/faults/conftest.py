"""Fault suite hooks: print the figures table at the end, write bench/results/faults-<date>.json."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults import report
from tests.faults.fixtures_a import (  # noqa: F401 (fixtures of cases 1-8)
    broker_proxy,
    collector,
    no_leaked_threads,
)

RESULTS_DIR = Path(__file__).resolve().parents[2] / "bench" / "results"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    table_rows = report.rows()
    if not table_rows:
        return
    terminalreporter.section("fault figures (issue 5)")
    terminalreporter.write_line(report.format_table(table_rows))
    path = report.write_json(RESULTS_DIR, table_rows)
    terminalreporter.write_line(f"written to {path}")
