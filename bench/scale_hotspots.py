"""Where the health tick's time goes as the fleet grows, measured in one process.

    .venv/bin/python bench/scale_hotspots.py [--stations 1000,10000,100000] [--out FILE]

The collector's health tick (``HealthFeed.tick``) runs, under the lock that ingest also needs:
``engine.tick`` (every station), the compliance points once a minute (``engine.compliance``:
``Inventory.stations_of`` for every commune, itself a scan of every station) and, after any
transition, the snapshot save (``engine.snapshot()`` + ``HealthStore.save``). Each is timed
here on a ``HealthEngine`` that has seen one reading from every station of a synthetic
inventory (``bench/scale_load.py``), the state the daemon reaches after one interval. A full
compliance over more than ``--compliance-limit`` communes is not run: its time is
extrapolated from ``stations_of`` calls (marked ``extrapolated``). Writes
``bench/results/scale-hotspots-<UTC>.json``. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.results_file import write_results
from bench.scale_load import plan, write_scale_inventory
from bench.scale_measure import rss_kib
from collector.health.config import HealthConfig
from collector.health.engine import HealthEngine
from collector.health.store import HealthStore
from collector.inventory import load_inventory
from loaxa.payloads import Telemetry


def _timed(fn) -> tuple[float, object]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def measure(stations: int, work: Path, compliance_limit: int) -> dict:
    inv_dict = write_scale_inventory(work / f"inv-{stations}.toml", stations, 60)
    inv = load_inventory(work / f"inv-{stations}.toml")
    items = plan(inv_dict, 60, 1)
    rss0 = rss_kib(os.getpid())  # the engine's own memory from here (inventory loaded)
    engine = HealthEngine(inv, HealthConfig())
    now = int(time.time() * 1000)
    observe_s = 0.0
    for it in items:
        payload = Telemetry.model_validate_json(it.payload(now - 60_000 + it.offset_ms))
        dt, _ = _timed(lambda p=payload: engine.observe(p, now))
        observe_s += dt
    engine.drain_transitions()
    communes = list(inv.communes)
    per_call, _ = _timed(lambda: [inv.stations_of(c) for c in communes[:50]])
    per_call /= min(50, len(communes))
    res: dict[str, object] = {
        "stations": stations,
        "communes": len(communes),
        "observe_us_per_msg": round(1e6 * observe_s / stations, 1),
        "engine_tick_s": round(_timed(lambda: engine.tick(now + 1000))[0], 4),
        "stations_of_ms_per_call": round(1000 * per_call, 3),
    }
    if len(communes) <= compliance_limit:
        res["compliance_s"] = round(_timed(lambda: engine.compliance(now + 1000))[0], 3)
    else:
        res["compliance_s"] = round(per_call * len(communes), 1)
        res["compliance_extrapolated"] = True
    snap_s, snap = _timed(engine.snapshot)
    store = HealthStore(str(work / f"state-{stations}.sqlite"))
    save_s, _ = _timed(lambda: store.save(snap, now))
    store.close()
    res |= {
        "snapshot_s": round(snap_s, 3),
        "store_save_s": round(save_s, 3),
        "engine_rss_mib": round((rss_kib(os.getpid()) - rss0) / 1024, 1),
    }
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stations", default="1000,10000,100000")
    ap.add_argument("--compliance-limit", type=int, default=4000, help="communes")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="loaxa-hotspots-") as tmp:
        for n in (int(x) for x in args.stations.split(",")):
            rows.append(measure(n, Path(tmp), args.compliance_limit))
            print(json.dumps(rows[-1]), flush=True)
    meta = {"machine": platform.machine(), "cpus": os.cpu_count(),
            "python": platform.python_version(), "loadavg": os.getloadavg()}  # fmt: skip
    write_results("scale-hotspots", {"meta": meta, "results": rows}, args.out)


if __name__ == "__main__":
    main()
