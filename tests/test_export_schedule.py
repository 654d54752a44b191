"""Scheduled exports: cron triggers in the province zone, and a monthly run against a real
InfluxDB that e-mails the files (aiosmtpd) and pushes the JSON (http.server)."""

from __future__ import annotations

import email
import email.policy
import json
from datetime import datetime

import pytest
from aiosmtpd.controller import Controller
from apscheduler.schedulers.background import BackgroundScheduler

from collector.alerts.config import EmailConfig
from collector.export.config import ExportConfig, ExportFormat, UpstreamConfig
from collector.export.schedule import (
    MONTHLY_JOB,
    YEARLY_JOB,
    ExportJobs,
    register_export_jobs,
    year_to_date,
)
from collector.storage.config import InfluxConfig
from tests.servers import free_port
from tests.test_export_figures import INVENTORY, TZ, ms
from tests.test_export_influx import DB, loaded  # noqa: F401 (fixture)
from tests.test_export_upstream import Receiver


class Inbox:
    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(
            email.message_from_bytes(envelope.content, policy=email.policy.default)
        )
        return "250 OK"


@pytest.fixture
def smtp():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield (
        EmailConfig(
            enabled=True,
            host="127.0.0.1",
            port=controller.port,
            security="none",
            sender="loaxa@so.example.vn",
        ),
        inbox,
    )
    controller.stop()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def _influx(url: str) -> InfluxConfig:
    return InfluxConfig(url=url, db=DB)


def test_cron_triggers_in_province_time(tmp_path):
    scheduler = BackgroundScheduler()
    cfg = ExportConfig(directory=tmp_path, yearly_month=11, yearly_day=20, yearly_at="06:15")
    register_export_jobs(scheduler, cfg, _influx("http://127.0.0.1:9"), INVENTORY)
    jobs = {j.id: j for j in scheduler.get_jobs()}
    assert set(jobs) == {MONTHLY_JOB, YEARLY_JOB}
    now = datetime(2026, 10, 15, 12, 0, tzinfo=TZ)
    assert jobs[MONTHLY_JOB].trigger.get_next_fire_time(None, now) == datetime(
        2026, 11, 1, 0, 30, tzinfo=TZ
    )
    assert jobs[YEARLY_JOB].trigger.get_next_fire_time(None, now) == datetime(
        2026, 11, 20, 6, 15, tzinfo=TZ
    )
    # the default yearly run: 25 November, before the 30 November deadline
    scheduler2 = BackgroundScheduler()
    register_export_jobs(
        scheduler2,
        ExportConfig(directory=tmp_path, monthly=False),
        _influx("http://127.0.0.1:9"),
        INVENTORY,
    )
    (job,) = scheduler2.get_jobs()
    assert job.trigger.get_next_fire_time(None, now) == datetime(2026, 11, 25, 0, 30, tzinfo=TZ)


def test_started_scheduler_plans_the_next_runs(tmp_path):
    scheduler = BackgroundScheduler(timezone=TZ)
    register_export_jobs(
        scheduler, ExportConfig(directory=tmp_path), _influx("http://127.0.0.1:9"), INVENTORY
    )
    scheduler.start(paused=True)
    try:
        planned = scheduler.get_job(MONTHLY_JOB).next_run_time
        assert (planned.day, planned.hour, planned.minute) == (1, 0, 30)
    finally:
        scheduler.shutdown(wait=True)


def test_year_to_date_period():
    p = year_to_date(ms("2026-11-25T00:30:00"), TZ)
    assert p.label == "2026-01-01_2026-11-24"
    assert p.t0_ms == ms("2026-01-01T00:00:00") and p.t1_ms == ms("2026-11-25T00:00:00")


def test_monthly_run_writes_emails_and_pushes(loaded, tmp_path, smtp, receiver):  # noqa: F811
    smtp_cfg, inbox = smtp
    cfg = ExportConfig(
        directory=tmp_path / "exports",
        formats=[ExportFormat.CSV, ExportFormat.XLSX],
        email_to=["so@example.vn", "truc.ban@example.vn"],
        upstream=UpstreamConfig(enabled=True, url=receiver.url),
    )
    jobs = ExportJobs(cfg, _influx(loaded.url), INVENTORY, smtp=smtp_cfg)
    result = jobs.monthly(now_ms=ms("2026-11-01T00:30:00"))
    assert result is not None and result.report.period.label == "2026-10"
    assert all(p.parent == tmp_path / "exports" for p in result.paths)
    assert jobs.counters == {"exports": 1, "emailed": 1, "pushed": 1}
    (msg,) = inbox.messages
    assert msg["To"] == "so@example.vn, truc.ban@example.vn"
    assert "Cao Bằng" in msg["Subject"] and "2026-10" in msg["Subject"]
    names = sorted(a.get_filename() for a in msg.iter_attachments())
    assert names == sorted(p.name for p in result.paths)
    xlsx = next(a for a in msg.iter_attachments() if a.get_filename().endswith(".xlsx"))
    assert xlsx.get_content_type().endswith("spreadsheetml.sheet")
    doc = json.loads(receiver.requests[0][1])
    assert doc["report_id"] == "cao-bang:2026-10"


def test_failures_are_counted_not_raised(tmp_path, receiver):
    receiver.status = 500
    cfg = ExportConfig(
        directory=tmp_path,
        formats=[ExportFormat.CSV],
        upstream=UpstreamConfig(enabled=True, url=receiver.url),
    )
    jobs = ExportJobs(cfg, _influx(f"http://127.0.0.1:{free_port()}"), INVENTORY)
    assert jobs.monthly(now_ms=ms("2026-11-01T00:30:00")) is None
    assert jobs.counters == {"export_failed": 1}


def test_email_failure_is_counted(loaded, tmp_path):  # noqa: F811
    dead = EmailConfig(
        enabled=True, host="127.0.0.1", port=free_port(), security="none", timeout_s=2
    )
    cfg = ExportConfig(directory=tmp_path, formats=[ExportFormat.CSV], email_to=["a@b.vn"])
    jobs = ExportJobs(cfg, _influx(loaded.url), INVENTORY, smtp=dead)
    assert jobs.yearly(now_ms=ms("2026-11-25T00:30:00")) is not None
    assert jobs.counters == {"exports": 1, "email_failed": 1}


def test_readme_sample_config_is_valid():
    import re
    import tomllib
    from pathlib import Path

    readme = (Path(__file__).parent.parent / "collector/export/README.md").read_text("utf-8")
    block = re.search(r"```toml\n(\[export\].*?)```", readme, re.S).group(1)
    cfg = ExportConfig.model_validate(tomllib.loads(block)["export"])
    assert cfg == ExportConfig(directory=cfg.directory)  # the sample shows the defaults
