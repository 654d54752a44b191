"""`loaxa demo` end to end: real servers, collector and fleet start, the screen shows the
province, the export and the Grafana folder are written, and nothing is left running."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import psutil

from loaxa.demo.view import TEXT


def _servers_under(path: Path) -> list[int]:
    """Mosquitto/InfluxDB processes whose config lives under ``path`` (the demo's own)."""
    return [
        p.pid
        for p in psutil.process_iter(["name", "cmdline"])
        if p.info["name"] in {"mosquitto", "influxd"}
        and any(str(path) in arg for arg in p.info["cmdline"] or [])
    ]


def test_demo_runs_and_leaves_its_reports(tmp_path: Path) -> None:
    lang = "vi"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "loaxa.cli",
            "demo",
            "--minutes",
            "0.4",
            "--communes",
            "2",
            "--lang",
            lang,
            "--refresh",
            "1",
            "--workdir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    # the screen (printed as a log when stdout is not a terminal) shows the province
    assert TEXT[lang]["title"].format(province="Cao Bằng") in out.stdout
    (run,) = list(tmp_path.iterdir())
    exports = sorted((run / "export").iterdir())
    suffixes = {p.suffix for p in exports}
    assert {".csv", ".xlsx", ".pdf", ".png"} <= suffixes
    stations_csv = next(p for p in exports if p.name.endswith("-stations.csv"))
    assert stations_csv.read_bytes().startswith(b"\xef\xbb\xbf")  # BOM for Excel
    with stations_csv.open(encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) >= 2  # every simulated station of the two communes has a row
    dashboards = {p.name for p in (run / "grafana" / "dashboards").iterdir()}
    assert {"overview.json", "station.json", "compliance.json"} <= dashboards
    assert (run / "grafana" / "provisioning" / "datasources").is_dir()
    assert not _servers_under(tmp_path), "the demo left servers running"
