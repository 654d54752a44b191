"""CPU per message of each collector stage, in one process, without MQTT or InfluxDB.

    .venv/bin/python bench/bench_ingest_stages.py [--messages 40000] [--stations 2000]

Same load as ``bench_ingest.py`` (realistic telemetry from N stations). Stages, each timed in
CPU seconds (``time.process_time``, so other load on the machine adds little): validation
(topic, inventory, pydantic), line protocol, the spool append (SQLite, fsync, batches of 2000),
the health engine, and the whole ``Pipeline.process`` as the MQTT worker calls it. Figures are
printed and written to ``bench/results/ingest-stages-<UTC time>.json``, never asserted.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.ingest_load import messages, write_inventory
from collector.health.engine import HealthEngine
from collector.health.store import HealthStore
from collector.ingest.health_feed import HealthFeed
from collector.ingest.pipeline import Incoming, Pipeline
from collector.ingest.sink import StorageSink
from collector.ingest.stats import IngestStats
from collector.ingest.validate import Accepted, Limits, validate
from collector.inventory import load_inventory
from collector.storage.config import SpoolFullPolicy
from collector.storage.points import points_for_payload
from collector.storage.spool import Spool

RESULTS = Path(__file__).resolve().parent / "results"
BATCH = 2000


def cpu_us(n: int, run: Callable[[], object]) -> float:
    start = time.process_time()
    run()
    return 1e6 * (time.process_time() - start) / n


def _loop() -> None:
    total = 0
    for i in range(10**6):
        total += i


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=40_000)
    ap.add_argument("--stations", type=int, default=2_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="loaxa-stages-") as tmp:
        work = Path(tmp)
        inventory = load_inventory(write_inventory(work / "inventory.toml", args.stations))
        now = int(time.time() * 1000)
        items = messages(range(args.stations), max(1, args.messages // args.stations), now, 6)
        n = len(items)
        incoming = [Incoming(t, p, now) for t, p in items]
        limits = Limits()
        # A fixed pure-Python loop: shows how much a busy or shared machine inflates the rest.
        figures: dict[str, float] = {"calibration_loop_ns": 1e3 * cpu_us(10**6, _loop)}
        accepted: list = []

        def run_validate() -> None:
            accepted[:] = [validate(m.topic, m.payload, now, inventory, limits) for m in incoming]

        figures["validate"] = cpu_us(n, run_validate)
        assert all(isinstance(a, Accepted) for a in accepted), "the load must be valid"
        lines: list[str] = []

        def run_points() -> None:
            lines[:] = [x for a in accepted for x in points_for_payload(a.payload, "p", a.commune)]

        figures["line_protocol"] = cpu_us(n, run_points)
        spool = Spool(work / "spool.sqlite", 1 << 34, SpoolFullPolicy.REJECT, fsync=True)
        per_msg = len(lines) // n

        def run_spool() -> None:
            for i in range(0, len(lines), BATCH * per_msg):
                spool.append(lines[i : i + BATCH * per_msg])

        figures["spool_append_fsync"] = cpu_us(n, run_spool)
        wall = time.perf_counter()
        run_spool()
        figures["spool_append_wall"] = 1e6 * (time.perf_counter() - wall) / n
        engine = HealthEngine(inventory)
        figures["health_observe"] = cpu_us(
            n, lambda: [engine.observe(a.payload, a.received_ms) for a in accepted]
        )
        store = HealthStore(work / "state.sqlite")
        full = Spool(work / "spool2.sqlite", 1 << 34, SpoolFullPolicy.REJECT, fsync=True)
        feed = HealthFeed(HealthEngine(inventory), store, full, None)
        pipeline = Pipeline(
            lambda: inventory, limits, StorageSink(full, feed.observe), IngestStats()
        )

        def run_pipeline() -> None:
            for i in range(0, n, BATCH):
                pipeline.process(incoming[i : i + BATCH], "bench")

        figures["pipeline_process"] = cpu_us(n, run_pipeline)
        figures["health_snapshot_ms"] = 1e-3 * cpu_us(1, feed.tick)
        store.close()
        spool.close()
        full.close()
    for k, v in figures.items():
        unit = {"_ms": "ms per tick", "_ns": "ns/iteration"}.get(k[-3:], "µs/msg")
        print(f"{k:<22} {v:>9.1f} {unit}")
    print(f"=> one core, pipeline only: {1e6 / figures['pipeline_process']:,.0f} msg/s")
    out = RESULTS / f"ingest-stages-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"messages": n, "stations": args.stations}
    out.write_text(json.dumps({"meta": meta, "cpu": figures}, indent=2) + "\n")
    print(f"written: {out}")


if __name__ == "__main__":
    main()
