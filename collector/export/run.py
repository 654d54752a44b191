"""One export run: read the period from InfluxDB, compute, write the requested files.

``progress`` (optional) is a callable taking a step count; the CLI passes a tqdm bar's
``update`` on a terminal. File names: ``loaxa-<province slug>-<period label>[-level].<ext>``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from collector.export.config import ExportFormat
from collector.export.csv_writer import write_csv
from collector.export.influx_source import InfluxSource
from collector.export.period import Period
from collector.export.report import Report, build_report
from collector.export.tables import Tables
from collector.export.xlsx_writer import write_xlsx
from collector.inventory import Inventory

log = logging.getLogger(__name__)
READ_STEPS = 5  # queries InfluxSource.load runs (for the progress total)


@dataclass(frozen=True)
class ExportResult:
    report: Report
    paths: list[Path]


def total_steps(inventory: Inventory, formats: Sequence[ExportFormat]) -> int:
    return READ_STEPS + len(inventory.communes) + len(formats)


def write_files(
    report: Report,
    directory: Path,
    prefix: str,
    formats: Sequence[ExportFormat],
    lang: str,
    progress: Callable[[int], None] | None = None,
) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    tables = Tables(report)
    paths: list[Path] = []
    for fmt in formats:
        if fmt is ExportFormat.CSV:
            paths += write_csv(tables, directory, prefix, lang)
        elif fmt is ExportFormat.XLSX:
            paths.append(write_xlsx(tables, directory, prefix, lang))
        else:
            from collector.export.chart import write_chart  # matplotlib: only when charting

            paths.append(write_chart(tables, directory, prefix, lang, fmt.value))
        if progress:
            progress(1)
    return paths


def run_export(
    inventory: Inventory,
    source: InfluxSource,
    period: Period,
    directory: Path,
    formats: Sequence[ExportFormat],
    lang: str,
    now_ms: int,
    goal_percent: float | None = None,
    progress: Callable[[int], None] | None = None,
) -> ExportResult:
    step = (lambda _name: progress(1)) if progress else None
    data = source.load(period.t0_ms, period.t1_ms, step)
    unknown = sorted(set(data) - set(inventory.stations))
    if unknown:  # stored under a station id the inventory no longer has: reported, not fatal
        log.warning(
            "%d station(s) in InfluxDB but not in the inventory, left out: %s",
            len(unknown),
            ", ".join(unknown[:10]),
        )
    report = build_report(inventory, data, period, now_ms, goal_percent, progress)
    prefix = f"loaxa-{inventory.province.slug}-{period.label}"
    paths = write_files(report, directory, prefix, formats, lang, progress)
    log.info("export %s: %d files in %s", period.label, len(paths), directory)
    return ExportResult(report, paths)
