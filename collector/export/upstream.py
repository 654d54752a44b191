"""Upstream report adapter: the export's figures as JSON (REPORT_API.md, version 1), POSTed to
a configurable endpoint (the province's "hệ thống thông tin nguồn" has no public API yet)."""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request

from collector.export.columns import commune_row, local_text, outage_values, station_row
from collector.export.config import UpstreamConfig
from collector.export.errors import DeliveryError
from collector.export.report import Report

log = logging.getLogger(__name__)
SCHEMA = "loaxa.report"
VERSION = 1


def report_payload(report: Report, include_stations: bool = True) -> dict[str, object]:
    p, s, tz = report.period, report.summary, report.period.tz

    body: dict[str, object] = {
        "schema": SCHEMA,
        "version": VERSION,
        "report_id": f"{report.province_slug}:{p.label}",
        "generated_at": local_text(report.generated_ms, tz),
        "province": {
            "code": report.province_code,
            "slug": report.province_slug,
            "name": report.province,
            "department": report.department,
        },
        "period": {
            "label": p.label,
            "kind": p.kind,
            "timezone": str(tz),
            "from": local_text(p.t0_ms, tz),
            "to": local_text(p.t1_ms, tz),
            "from_ms": p.t0_ms,
            "to_ms": p.t1_ms,
        },
        "goal_percent": report.goal_percent,
        "summary": {
            "communes": s.communes,
            "communes_known": s.communes_known,
            "communes_meeting_goal": s.communes_meeting_goal,
            "share_meeting_goal_percent": s.share_meeting_goal_percent,
            "mean_availability_percent": s.mean_availability_percent,
            "stations": s.stations,
            "stations_unknown": s.stations_unknown,
            "outages": s.outages,
            "worst_communes": [c.subject for c in s.worst],
        },
        "communes": [commune_row(c) for c in report.communes],
    }
    if include_stations:
        body["stations"] = [station_row(f) for f in report.stations]
        body["outages"] = [
            outage_values(o, f.commune, tz) for f in report.stations for o in f.outages
        ]
    return body


def push_report(report: Report, config: UpstreamConfig) -> int:
    """POST the report; returns the HTTP status (2xx) or raises DeliveryError."""
    data = json.dumps(report_payload(report, config.include_stations), ensure_ascii=False)
    req = urllib.request.Request(config.url, data=data.encode("utf-8"), method="POST")
    req.add_header("Content-Type", "application/json; charset=utf-8")
    req.add_header("Idempotency-Key", f"{report.province_slug}:{report.period.label}")
    if config.token:
        req.add_header("Authorization", f"Bearer {config.token.get_secret_value()}")
    try:
        with urllib.request.urlopen(req, timeout=config.timeout_s) as resp:
            log.info("report %s pushed to %s: %s", report.period.label, config.url, resp.status)
            return resp.status
    except urllib.error.HTTPError as err:
        detail = err.read(300).decode("utf-8", "replace")
        raise DeliveryError(
            f"upstream {config.url} refused the report ({err.code}): {detail}"
        ) from err
    except (urllib.error.URLError, OSError) as err:
        raise DeliveryError(f"upstream {config.url} unreachable: {err}") from err
