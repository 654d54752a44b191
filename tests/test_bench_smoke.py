"""The ingest benchmark runs end to end in --quick mode and loses nothing.

Figures are not checked (they depend on the machine); only that every consumer ran and every
message published reached its destination. Node-RED is left out here: it needs npm and the
network (``make bench`` runs it).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_quick_bench_completes_with_nothing_lost(tmp_path):
    out = tmp_path / "ingest.json"
    argv = [sys.executable, str(ROOT / "bench" / "bench_ingest.py"), "--quick",
            "--messages", "3000", "--stations", "300", "--only", "bare,raw-write,bridge,collector",
            "--qos", "1,0", "--out", str(out)]  # fmt: skip
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    runs = {(r["consumer"], r["qos"]): r for r in report["results"]}
    assert set(runs) == {
        (c, q) for c in ("bare", "raw-write", "bridge", "collector") for q in (1, 0)
    }
    for key, r in runs.items():
        assert not r["note"].startswith("failed"), (key, r["note"])
        assert r["messages"] == 3000 and r["lost"] == 0, (key, r)
    assert "collector" in done.stdout and "msg/s" in done.stdout
