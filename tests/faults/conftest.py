"""Fault suite hooks: print the figures table at the end; a run with slow cases also writes
bench/results/faults-<date>.json."""

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
_SLOW_SELECTED = pytest.StashKey[bool]()


def pytest_collection_finish(session: pytest.Session) -> None:
    session.config.stash[_SLOW_SELECTED] = any(i.get_closest_marker("slow") for i in session.items)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    table_rows = report.rows()
    if not table_rows:
        return
    terminalreporter.section("fault figures (issue 5)")
    terminalreporter.write_line(report.format_table(table_rows))
    # Only a run of the fault suite (`make faults`) writes figures: the fast variants in
    # `make test` would overwrite the committed figures of the day (a dirty tree after CI).
    if not terminalreporter.config.stash.get(_SLOW_SELECTED, False):
        terminalreporter.write_line("(fast variants only: figures not written)")
        return
    path = report.write_json(RESULTS_DIR, table_rows)
    terminalreporter.write_line(f"written to {path}")
