"""Storage throughput: points/s encoded (ours vs influxdb-client Point), spooled, written.

    .venv/bin/python bench/bench_storage.py [--points 200000] [--url http://host:8086 --db x]

Without ``--url`` a throwaway InfluxDB 1.x is started from tests/servers.py. Numbers are printed,
not asserted: they depend on the machine.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from collector.storage import Storage, StorageConfig
from collector.storage.config import InfluxConfig, SpoolConfig
from collector.storage.line_protocol import encode_line, field_type, split_line
from collector.storage.points import telemetry_points
from loaxa.payloads import Audio, Cluster, Power, Telemetry

T0 = 1_790_000_000_000


def payloads(count: int) -> list[Telemetry]:
    clusters = [Cluster(id=1, kind="wired", relay_on=True, rms_dbfs=-20.5)]
    return [
        Telemetry(
            station=f"cb-{i % 500:05d}",
            session=1,
            seq=i,
            ts=T0 + i,
            agent_uptime_s=i,
            audio=Audio(rms_dbfs=-21.25, peak_dbfs=-3.5),
            power=Power(mains_v=221.5, battery_v=12.75),
            temp_c=31.5,
            clusters=clusters,
        )
        for i in range(count)
    ]


def rate(label: str, count: int, seconds: float) -> None:
    print(f"{label:<44} {count / seconds:>12,.0f} points/s  ({count:,} in {seconds:.2f} s)")


def best_of(rounds: int, run: Callable[[], object]) -> float:
    """Fastest of a few rounds (timeit's habit): other load on the machine only adds time."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def bench_encode(items: list[Telemetry], rounds: int) -> list[str]:
    lines: list[str] = []

    def run() -> None:
        lines[:] = [x for p in items for x in telemetry_points(p, "cao-bang", "01273")]

    seconds = best_of(rounds, run)
    rate("encode: points_for_payload (line protocol)", len(lines), seconds)
    return lines


def bench_point(lines: list[str], rounds: int) -> None:
    """Same points through our encode_line and through influxdb-client's Point."""
    from influxdb_client import Point, WritePrecision

    points = []
    for line in lines:
        m, tags, raw, ts = split_line(line)
        fields = {k: _value(v) for k, v in raw.items()}
        points.append((m, tags, fields, int(ts)))

    def ours() -> None:
        for m, tags, fields, ts in points:
            encode_line(m, tags, fields, ts)

    def theirs() -> None:
        for m, tags, fields, ts in points:
            pt = Point(m)
            for k, v in tags.items():
                pt.tag(k, v)
            for k, v in fields.items():
                pt.field(k, v)
            pt.time(ts, WritePrecision.MS).to_line_protocol()

    t_ours = best_of(rounds, ours)
    rate("encode: encode_line, same points", len(points), t_ours)
    t_theirs = best_of(rounds, theirs)
    rate("encode: influxdb-client Point, same points", len(points), t_theirs)
    print(f"  encode_line is {t_theirs / t_ours:.1f}x faster than Point (best of {rounds})")


def _value(raw: str) -> object:
    kind = field_type(raw)
    if kind == "integer":
        return int(raw[:-1])
    if kind == "boolean":
        return raw == "true"
    if kind == "string":
        return raw[1:-1]
    return float(raw)


def bench_write(lines: list[str], url: str, db: str, workdir: Path) -> None:
    cfg = StorageConfig(
        influx=InfluxConfig(url=url, db=db, create_database=True, flush_interval_ms=50),
        spool=SpoolConfig(path=workdir / "spool.sqlite", dead_letter_path=workdir / "dl.jsonl"),
    )
    storage = Storage(cfg)
    start = time.perf_counter()
    for k in range(0, len(lines), 100):  # messages of 100 lines, one fsynced commit each
        storage.append(lines[k : k + 100])
    rate("spool append (fsync per 100 lines)", len(lines), time.perf_counter() - start)
    start = time.perf_counter()
    storage.start()
    while storage.spool.depth:
        time.sleep(0.01)
    seconds = time.perf_counter() - start
    storage.stop()
    rate(f"write to InfluxDB (batch {cfg.influx.batch_size})", len(lines), seconds)
    snap = storage.snapshot()
    batches = snap["batches_written_total"]
    print(
        f"  batches {batches}, mean write latency "
        f"{1000 * snap['write_seconds_total'] / max(1, batches):.1f} ms"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--points", type=int, default=100_000, help="telemetry messages")
    ap.add_argument("--url", help="InfluxDB URL (default: start a temporary 1.x)")
    ap.add_argument("--db", default="loaxa_bench")
    ap.add_argument("--rounds", type=int, default=3, help="encode rounds (the best is shown)")
    args = ap.parse_args()
    items = payloads(args.points)
    lines = bench_encode(items, args.rounds)
    bench_point(lines, args.rounds)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        server = None
        if not args.url:
            from tests.servers import InfluxDB

            (workdir / "influx").mkdir()
            server = InfluxDB(workdir / "influx").start()
        try:
            bench_write(lines, args.url or server.url, args.db, workdir)
        finally:
            if server:
                server.stop()


if __name__ == "__main__":
    main()
