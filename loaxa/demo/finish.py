"""What the demo leaves behind: the export of the simulated period and a Grafana folder."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from collector.export.config import ExportFormat
from collector.export.influx_query import InfluxReader
from collector.export.influx_source import InfluxSource
from collector.export.period import Period
from collector.export.run import run_export
from collector.inventory import Inventory
from dashboards.generate import PACKAGE_DIR, write_all


def export_period(
    inventory: Inventory, influx_url: str, t0_ms: int, t1_ms: int, out: Path, lang: str
) -> list[Path]:
    """CSV, XLSX, PDF and PNG of the demo period, from what the collector stored."""
    tz = inventory.province.tz
    label = "demo-" + time.strftime("%Y%m%d-%H%M", time.localtime(t0_ms / 1000))
    period = Period(label, "range", t0_ms, t1_ms, tz)
    source = InfluxSource(InfluxReader(influx_url, "loaxa"), inventory.province.slug)
    formats = [ExportFormat.CSV, ExportFormat.XLSX, ExportFormat.PDF, ExportFormat.PNG]
    return run_export(inventory, source, period, out, formats, lang, t1_ms).paths


def grafana_folder(inventory: Inventory, influx_url: str, out: Path) -> Path:
    """Dashboards for this inventory plus the provisioning files and an env file to start a
    Grafana with them (see dashboards/README.md)."""
    write_all(inventory, out / "dashboards")
    shutil.copytree(PACKAGE_DIR / "provisioning", out / "provisioning", dirs_exist_ok=True)
    (out / "grafana.env").write_text(
        f"LOAXA_INFLUX_URL={influx_url}\nLOAXA_INFLUX_DB=loaxa\nLOAXA_INFLUX_USER=\n"
        f"LOAXA_INFLUX_PASSWORD=\nLOAXA_INFLUX_AUTH=\nLOAXA_DASHBOARDS_DIR={out / 'dashboards'}\n"
        f"GF_PATHS_PROVISIONING={out / 'provisioning'}\n"
    )
    return out
