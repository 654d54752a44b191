"""Scheduled exports for the collector daemon (apscheduler 3, cron in the province zone).

* monthly: 00:30 on the 1st (``monthly_at``), the month that just ended;
* yearly: ``yearly_day``/``yearly_month`` (default 25 November, before the provincial report
  deadline of 30 November), 1 January up to the end of the day before the run.

Each run writes the files to ``directory``, then e-mails them (``email_to`` non-empty) and
pushes the JSON upstream (``upstream.enabled``). A failure is logged and counted in
``ExportJobs.counters``; it never propagates into the scheduler or the daemon.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta

from apscheduler.triggers.cron import CronTrigger

from collector.alerts.config import EmailConfig
from collector.export.config import ExportConfig
from collector.export.errors import ExportError
from collector.export.influx_source import InfluxSource
from collector.export.mailer import build_mail, send_mail
from collector.export.period import Period, previous_month, range_period
from collector.export.run import ExportResult, run_export
from collector.export.settings import reader_for
from collector.export.tables import Tables, label
from collector.export.upstream import push_report
from collector.inventory import Inventory
from collector.storage.config import InfluxConfig

log = logging.getLogger(__name__)
MONTHLY_JOB, YEARLY_JOB = "loaxa-export-monthly", "loaxa-export-yearly"


def year_to_date(now_ms: int, tz) -> Period:
    """1 January of the current local year to the end of yesterday (whole days)."""
    today = datetime.fromtimestamp(now_ms / 1000, tz).date()
    last = today - timedelta(days=1)
    return range_period(f"{last.year:04d}-01-01", last.isoformat(), tz)


class ExportJobs:
    """The jobs' bodies, callable directly (tests, ``now_ms`` injected) or by the scheduler."""

    def __init__(
        self,
        config: ExportConfig,
        influx: InfluxConfig,
        inventory: Inventory,
        smtp: EmailConfig | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config, self.inventory, self.clock = config, inventory, clock
        self.smtp = config.email or smtp
        self.reader = reader_for(influx)
        self.counters: Counter[str] = Counter()

    def monthly(self, now_ms: int | None = None) -> ExportResult | None:
        now = int(self.clock() * 1000) if now_ms is None else now_ms
        return self.run(previous_month(now, self.inventory.province.tz), now)

    def yearly(self, now_ms: int | None = None) -> ExportResult | None:
        now = int(self.clock() * 1000) if now_ms is None else now_ms
        return self.run(year_to_date(now, self.inventory.province.tz), now)

    def run(self, period: Period, now_ms: int) -> ExportResult | None:
        cfg = self.config
        source = InfluxSource(
            self.reader, self.inventory.province.slug, lookback_ms=cfg.lookback_days * 86_400_000
        )
        try:
            result = run_export(
                self.inventory,
                source,
                period,
                cfg.directory,
                cfg.formats,
                cfg.lang,
                now_ms,
                cfg.goal_percent,
            )
        except (ExportError, OSError) as err:
            self.counters["export_failed"] += 1
            log.error("scheduled export %s failed: %s", period.label, err)
            return None
        except Exception:  # a job boundary: a bug must not stop the daemon's scheduler
            self.counters["export_failed"] += 1
            log.exception("scheduled export %s failed unexpectedly", period.label)
            return None
        self.counters["exports"] += 1
        self._deliver(result)
        return result

    def _deliver(self, result: ExportResult) -> None:
        if self.config.email_to:
            self._email(result)
        if self.config.upstream.enabled:
            try:
                push_report(result.report, self.config.upstream)
                self.counters["pushed"] += 1
            except ExportError as err:
                self.counters["push_failed"] += 1
                log.error("export %s: upstream push failed: %s", result.report.period.label, err)

    def _email(self, result: ExportResult) -> None:
        cfg, report = self.config, result.report
        if self.smtp is None:
            self.counters["email_failed"] += 1
            log.error("export: email_to is set but there are no SMTP settings ([export.email])")
            return
        subject = f"{label('title', cfg.lang)} - {report.province} - {report.period.label}"
        lines = Tables(report).summary(cfg.lang)
        text = "\n".join(f"{k}: {'' if v is None else v}" for k, v in lines)
        try:
            send_mail(self.smtp, build_mail(self.smtp, cfg.email_to, subject, text, result.paths))
            self.counters["emailed"] += 1
        except ExportError as err:
            self.counters["email_failed"] += 1
            log.error("export %s: e-mail failed: %s", report.period.label, err)


def _hm(text: str) -> tuple[int, int]:
    h, m = text.split(":")
    return int(h), int(m)


def register_export_jobs(
    scheduler,
    config: ExportConfig,
    influx: InfluxConfig,
    inventory: Inventory,
    smtp: EmailConfig | None = None,
) -> ExportJobs:
    """Add the monthly/yearly cron jobs to an apscheduler 3 scheduler; returns their runner."""
    jobs = ExportJobs(config, influx, inventory, smtp)
    tz = inventory.province.tz
    common = {
        "replace_existing": True,
        "coalesce": True,
        "max_instances": 1,
        "misfire_grace_time": 6 * 3600,
    }
    if config.monthly:
        h, m = _hm(config.monthly_at)
        scheduler.add_job(
            jobs.monthly,
            CronTrigger(day=1, hour=h, minute=m, timezone=tz),
            id=MONTHLY_JOB,
            name="monthly uptime export",
            **common,
        )
    if config.yearly:
        h, m = _hm(config.yearly_at)
        trigger = CronTrigger(
            month=config.yearly_month, day=config.yearly_day, hour=h, minute=m, timezone=tz
        )
        scheduler.add_job(
            jobs.yearly, trigger, id=YEARLY_JOB, name="yearly uptime export", **common
        )
    return jobs
