"""The scale, alert-latency and agent-footprint benchmarks run end to end in --quick mode.

Figures are not checked (they depend on the machine and its load); only that each script
completes, writes its JSON and loses nothing: every reading stored (scale), every injected
fault alerted on the MQTT feed and by e-mail (alert latency), no seq missing after the agent's
queue drained (footprint). The scale smoke run (~25 s) is in the fast suite; the other two
(~40 s each) are marked slow.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(script: str, out: Path) -> dict:
    argv = [sys.executable, str(ROOT / "bench" / script), "--quick", "--out", str(out)]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert f"written: {out}" in done.stdout
    return json.loads(out.read_text())


def test_scale_quick_stores_every_reading(tmp_path):
    report = _run("bench_scale.py", tmp_path / "scale.json")
    (point,) = report["results"]
    assert point["messages"] == 300 * 4
    assert point["publisher"]["sent"] == point["publisher"]["acked"] == point["messages"]
    assert point["stored"] == point["messages"] and point["lost"] == 0
    assert point["health_holds_all"], "the health state never held every station"


@pytest.mark.slow
def test_alert_latency_quick_alerts_every_fault(tmp_path):
    report = _run("bench_alert_latency.py", tmp_path / "alerts.json")
    assert report["faults"] == 6
    assert report["missing"] == 0
    for fault, figures in report["by_fault"].items():
        assert figures["faults"] == 2, fault
        assert figures["smtp_s"]["n"] == figures["left_s"]["n"] == 2, fault


@pytest.mark.slow
def test_agent_footprint_quick_loses_nothing(tmp_path):
    report = _run("bench_agent_footprint.py", tmp_path / "footprint.json")
    assert set(report["phases"]) == {"mcu", "pcm", "pcm-link-down"}
    assert report["phases"]["pcm-link-down"]["queued_messages"] > 0
    assert report["messages_received"] > 0 and report["lost"] == 0
