"""ExportConfig: the ``[export]`` section of the collector's TOML file.

[export]
directory = "/var/lib/loaxa/exports"
formats = ["csv", "xlsx", "png"]
lang = "vi"
monthly = true                # 00:30 on the 1st, the month before
yearly = true                 # before the provincial report deadline
yearly_month = 11
yearly_day = 25
email_to = ["so.vhttdl@example.vn"]   # SMTP settings: [alerts.email] unless [export.email]
[export.upstream]
enabled = false
url = "https://nguon.example.vn/api/loaxa/report"
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from collector.alerts.config import EmailConfig
from loaxa.secret_sources import secret_sources


class ExportFormat(StrEnum):
    CSV = "csv"  # UTF-8 with BOM, one file per level
    XLSX = "xlsx"  # summary sheet + one sheet per level
    PNG = "png"  # one-page report
    PDF = "pdf"  # the same page as PDF


class UpstreamConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    enabled: bool = Field(False, description="POST the report JSON (REPORT_API.md) after export")
    url: str = Field("http://127.0.0.1:8090/report", description="receiving endpoint")
    token: SecretStr | None = Field(None, description="sent as 'Authorization: Bearer ...'")
    token_file: Path | None = Field(
        None, description="file holding the token (else env LOAXA_UPSTREAM_TOKEN)"
    )
    _secrets = model_validator(mode="before")(secret_sources({"token": "LOAXA_UPSTREAM_TOKEN"}))
    timeout_s: Annotated[float, Field(gt=0)] = Field(30.0, description="HTTP timeout")
    include_stations: bool = Field(True, description="include per-station figures and outages")


class ExportConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    directory: Path = Field(Path("/var/lib/loaxa/exports"), description="where files are written")
    formats: list[ExportFormat] = Field(
        default_factory=lambda: [ExportFormat.CSV, ExportFormat.XLSX, ExportFormat.PNG],
        description="files to produce",
    )
    lang: Literal["vi", "en"] = Field("vi", description="language of headers and the report")
    goal_percent: Annotated[float, Field(ge=0, le=100)] | None = Field(
        None, description="availability goal; default the inventory's province.goal_percent"
    )
    monthly: bool = Field(True, description="scheduled: the previous month at 00:30 on the 1st")
    monthly_at: str = Field("00:30", description="local time of the monthly run")
    yearly: bool = Field(True, description="scheduled: year to date, before the deadline")
    yearly_month: Annotated[int, Field(ge=1, le=12)] = Field(11, description="month of the run")
    yearly_day: Annotated[int, Field(ge=1, le=28)] = Field(25, description="day of the run")
    yearly_at: str = Field("00:30", description="local time of the yearly run")
    email_to: list[Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")]] = Field(
        default_factory=list, description="send the files to these addresses (empty: no e-mail)"
    )
    email: EmailConfig | None = Field(None, description="SMTP; default: [alerts.email]")
    upstream: UpstreamConfig = Field(default_factory=UpstreamConfig)
    lookback_days: Annotated[int, Field(ge=0, le=366)] = Field(
        35, description="history read before the period, for outages that began earlier"
    )

    @field_validator("monthly_at", "yearly_at")
    @classmethod
    def _hh_mm(cls, value: str) -> str:
        m = re.match(r"^([01]\d|2[0-3]):([0-5]\d)$", value)
        if not m:
            raise ValueError(f"{value!r} is not a local time HH:MM")
        return value
