"""``loaxa export``: monthly, yearly or any-range uptime export from InfluxDB.

    loaxa export --month 2026-10 --config /etc/loaxa/collector.toml
    loaxa export --year 2026 --format csv,xlsx,pdf --lang en --out /tmp/report
    loaxa export --from 2026-10-01 --to 2026-10-15 --goal 99.5 --push

Exit status: 0 written, 1 InfluxDB or delivery failure, 2 bad arguments or configuration.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path

from collector.config import ConfigError
from collector.export.config import ExportFormat
from collector.export.errors import ExportError
from collector.export.influx_source import InfluxSource
from collector.export.period import Period, PeriodError, month_period, range_period, year_period
from collector.export.run import run_export, total_steps
from collector.export.settings import load_settings, reader_for
from collector.export.upstream import push_report
from collector.inventory import InventoryError

log = logging.getLogger("collector.export")
DEFAULT_CONFIG = "/etc/loaxa/collector.toml"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "export",
        help="monthly/yearly uptime export (CSV, XLSX, PNG/PDF) from InfluxDB",
        description="Availability, outages, broadcast minutes per station and commune, and a "
        "province summary, for a month, a year or a date range (local province time).",
    )
    p.add_argument("--config", default=DEFAULT_CONFIG, help=f"collector TOML ({DEFAULT_CONFIG})")
    when = p.add_mutually_exclusive_group(required=True)
    when.add_argument("--month", help="YYYY-MM, e.g. 2026-10")
    when.add_argument("--year", help="YYYY, the calendar year")
    when.add_argument("--from", dest="date_from", help="YYYY-MM-DD first day (with --to)")
    p.add_argument("--to", dest="date_to", help="YYYY-MM-DD last day, inclusive")
    p.add_argument("--out", type=Path, help="output directory (default: [export].directory)")
    p.add_argument("--format", help="comma list of csv,xlsx,png,pdf (default: [export].formats)")
    p.add_argument("--lang", choices=["vi", "en"], help="language (default: [export].lang)")
    p.add_argument("--goal", type=float, help="availability goal in %% (default: inventory)")
    p.add_argument("--push", action="store_true", help="also POST the JSON to [export.upstream]")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_run)


def _period(args: argparse.Namespace, tz) -> Period:
    if args.month:
        return month_period(args.month, tz)
    if args.year:
        return year_period(args.year, tz)
    if not args.date_to:
        raise PeriodError("--from needs --to")
    return range_period(args.date_from, args.date_to, tz)


def _formats(text: str | None, default: list[ExportFormat]) -> list[ExportFormat]:
    if not text:
        return list(default)
    try:
        return [ExportFormat(f.strip().lower()) for f in text.split(",") if f.strip()]
    except ValueError as err:
        raise PeriodError(f"--format {text!r}: use csv, xlsx, png, pdf") from err


def _progress_bar(total: int, enabled: bool) -> tuple[Callable[[int], None] | None, object]:
    """A tqdm bar on an interactive terminal only (never in logs, cron or tests)."""
    if not enabled or not sys.stderr.isatty():
        return None, None
    from tqdm import tqdm

    bar = tqdm(total=total, desc="export", unit="step", file=sys.stderr)
    return bar.update, bar


def _run(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(args.config)
        period = _period(args, settings.inventory.province.tz)
        formats = _formats(args.format, settings.export.formats)
    except (ConfigError, InventoryError, PeriodError) as err:
        print(f"loaxa export: {err}", file=sys.stderr)
        return 2
    cfg, inventory = settings.export, settings.inventory
    if args.goal is not None and not 0 <= args.goal <= 100:
        print("loaxa export: --goal must be between 0 and 100", file=sys.stderr)
        return 2
    goal = args.goal if args.goal is not None else cfg.goal_percent
    source = InfluxSource(
        reader_for(settings.collector.influx),
        inventory.province.slug,
        lookback_ms=cfg.lookback_days * 86_400_000,
    )
    update, bar = _progress_bar(total_steps(inventory, formats), not args.no_progress)
    try:
        result = run_export(
            inventory,
            source,
            period,
            args.out or cfg.directory,
            formats,
            args.lang or cfg.lang,
            int(time.time() * 1000),
            goal,
            update,
        )
        if args.push:
            push_report(result.report, cfg.upstream)
    except ExportError as err:
        print(f"loaxa export: {err}", file=sys.stderr)
        return 1
    finally:
        if bar is not None:
            bar.close()
    for path in result.paths:
        print(path)
    if source.skipped:
        print(f"loaxa export: skipped rows: {dict(source.skipped)}", file=sys.stderr)
    return 0
