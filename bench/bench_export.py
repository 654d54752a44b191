"""Export speed: a year of synthetic history for 3,000 stations, monthly and yearly exports.

    .venv/bin/python bench/bench_export.py [--stations 3000] [--computed]
                                           [--url http://host:8086 --db x]

By default the history is WRITTEN to a real InfluxDB 1.x (a throwaway one from tests/servers.py
unless --url) with the project's encoder, and the export reads it back through /query exactly as
`loaxa export` does. --computed skips InfluxDB and times only the arithmetic and the files on
the generated transitions. History per station: state transitions (outages, silence, battery,
monthly maintenance; about one episode every two days), two logged broadcasts a day, and one
telemetry point a day (the evidence query runs against a real telemetry series; a real
collector stores one a minute). Times are printed, never asserted: they depend on the machine.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from collector.export.config import ExportFormat
from collector.export.figures import BroadcastSpan
from collector.export.influx_query import InfluxReader
from collector.export.influx_source import InfluxSource
from collector.export.period import month_period, year_period
from collector.export.report import StationData, build_report
from collector.export.run import run_export, write_files
from collector.health.availability import Transition
from collector.health.events import Cause, State
from collector.inventory import Inventory, parse_inventory
from collector.storage.points import broadcast_point, state_point, telemetry_points
from loaxa.payloads import Broadcast, ProgramSource, Telemetry

PROVINCE = "cao-bang"
FORMATS = [ExportFormat.CSV, ExportFormat.XLSX, ExportFormat.PNG]
DAY = 86_400_000
MIN = 60_000


def inventory(stations: int, per_commune: int) -> Inventory:
    communes = (stations + per_commune - 1) // per_commune
    return parse_inventory(
        {
            "province": {"code": "04", "slug": PROVINCE, "name": "Cao Bằng", "department": "Sở"},
            "schedules": [{"id": "daily", "windows": ["05:30-06:30", "17:00-18:30"]}],
            "communes": [
                {"code": f"{10000 + c:05d}", "name": f"Xã số {c}", "schedule": "daily"}
                for c in range(communes)
            ],
            "stations": [
                {
                    "id": f"st-{i:05d}",
                    "commune": f"{10000 + i // per_commune:05d}",
                    "name": f"Đài {i}",
                    "lat": 22.6,
                    "lon": 106.2,
                    "position": "demo",
                }
                for i in range(stations)
            ],
        }
    )


def history(sid: str, seed: int, t0: int, days: int) -> tuple[list[Transition], list[tuple]]:
    """One station's year: transitions and broadcasts (start, end, source)."""
    rng = random.Random(seed)
    trs = [Transition(sid, t0 - 40 * DAY, State.OPERATING)]
    casts = []
    for d in range(days):
        day = t0 + d * DAY  # local midnight (t0 is one)
        for start_min, length in ((330, 60), (1020, 90)):
            src = rng.choice(list(ProgramSource))
            casts.append((day + start_min * MIN, day + (start_min + length) * MIN, src))
        roll = rng.random()
        at = day + rng.randrange(7 * 60, 16 * 60) * MIN
        if d % 30 == 15:
            episode = (State.MAINTENANCE, None, 180 * MIN)
        elif roll < 0.25:
            episode = (State.DOWN, rng.choice(list(Cause)), int(rng.expovariate(1 / 40) * MIN))
        elif roll < 0.45:
            episode = (State.ON_BATTERY, Cause.POWER, rng.randrange(60, 240) * MIN)
        elif roll < 0.5:
            at = day + (330 + rng.randrange(0, 40)) * MIN
            episode = (State.SILENT, Cause.AUDIO_CHAIN, rng.randrange(5, 20) * MIN)
        else:
            continue
        state, cause, length = episode
        trs.append(Transition(sid, at, state, cause))
        trs.append(Transition(sid, at + max(1000, length), State.OPERATING))
    return trs, casts


def lines_for(inv: Inventory, sid: str, trs: list[Transition], casts: list[tuple]) -> list[str]:
    commune = inv.stations[sid].commune
    out = [state_point(t.ts_ms, PROVINCE, commune, sid, t.state, t.cause) for t in trs]
    for k, (a, b, src) in enumerate(casts):
        stop = Broadcast(
            station=sid, session=1, seq=k, ts=b, action="stop", source=src, start_ts=a, end_ts=b
        )
        out.append(broadcast_point(stop, PROVINCE, commune))
    for k, (a, _, _) in enumerate(casts[::2]):
        tel = Telemetry(station=sid, session=1, seq=k, ts=a, agent_uptime_s=k)
        out += telemetry_points(tel, PROVINCE, commune)
    return out


def post(url: str, db: str, lines: list[str]) -> None:
    req = urllib.request.Request(
        f"{url}/write?db={db}&precision=ms", data="\n".join(lines).encode(), method="POST"
    )
    with urllib.request.urlopen(req, timeout=300) as r:
        if r.status != 204:
            raise RuntimeError(f"write failed: {r.status}")


def generate(inv: Inventory, t0: int, days: int, url: str | None, db: str) -> dict:
    """Generate every station's history; write it to InfluxDB when ``url`` is given."""
    data: dict[str, StationData] = {}
    points = 0
    batch: list[str] = []
    start = time.perf_counter()
    with ThreadPoolExecutor(4) as pool:
        futures = []
        for i, sid in enumerate(inv.stations):
            trs, casts = history(sid, i, t0, days)
            data[sid] = StationData(trs, True, [BroadcastSpan(a, b, s) for a, b, s in casts])
            if url:
                batch += lines_for(inv, sid, trs, casts)
                if len(batch) >= 50_000:
                    futures.append(pool.submit(post, url, db, batch))
                    points, batch = points + len(batch), []
        if url and batch:
            futures.append(pool.submit(post, url, db, batch))
            points += len(batch)
        for f in futures:
            f.result()
    took = time.perf_counter() - start
    transitions = sum(len(d.timeline) for d in data.values())
    where = f"{points:,} points written to InfluxDB" if url else "not written"
    print(f"history: {len(data):,} stations, {transitions:,} transitions, {where}, {took:.1f} s")
    return data


def timed(label: str, fn) -> None:
    start = time.perf_counter()
    result = fn()
    print(f"{label:<40} {time.perf_counter() - start:8.2f} s")
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stations", type=int, default=3000)
    ap.add_argument("--per-commune", type=int, default=5)
    ap.add_argument("--computed", action="store_true", help="no InfluxDB: arithmetic + files")
    ap.add_argument("--url", help="an existing InfluxDB (default: start a throwaway one)")
    ap.add_argument("--db", default="loaxa_bench")
    ap.add_argument("--no-write", action="store_true", help="--url already holds the history")
    args = ap.parse_args()
    inv = inventory(args.stations, args.per_commune)
    tz = inv.province.tz
    year, month = year_period("2026", tz), month_period("2026-10", tz)
    days = year.duration_ms // DAY
    out = Path(tempfile.mkdtemp(prefix="loaxa-bench-export-"))
    server = None
    url = args.url
    if not args.computed and not url:
        from tests.servers import InfluxDB

        (out / "influxdb").mkdir()
        server = InfluxDB(out / "influxdb").start()
        url = server.url
    try:
        if url:
            urllib.request.urlopen(
                urllib.request.Request(
                    f"{url}/query", data=f"q=CREATE DATABASE {args.db}".encode()
                ),
                timeout=30,
            )
        write_to = None if args.computed or args.no_write else url
        data = generate(inv, year.t0_ms, days, write_to, args.db)
        for period in (month, year):
            if args.computed:
                report = timed(
                    f"compute {period.label} ({period.kind})",
                    lambda p=period: build_report(inv, data, p, 0),
                )
                timed(
                    f"write files {period.label}",
                    lambda r=report, p=period: write_files(r, out, f"b-{p.label}", FORMATS, "vi"),
                )
            else:
                source = InfluxSource(InfluxReader(url, args.db), PROVINCE)
                timed(
                    f"export {period.label} ({period.kind}) from InfluxDB",
                    lambda p=period, s=source: run_export(inv, s, p, out, FORMATS, "vi", 0),
                )
                loaded = timed(
                    "  of which: read from InfluxDB",
                    lambda p=period, s=source: s.load(p.t0_ms, p.t1_ms),
                )
                report = timed(
                    "  of which: compute", lambda p=period, d=loaded: build_report(inv, d, p, 0)
                )
                timed(
                    "  of which: write CSV, XLSX, PNG",
                    lambda r=report, p=period: write_files(r, out, f"b-{p.label}", FORMATS, "vi"),
                )

        print(f"files in {out}")
    finally:
        if server:
            server.stop()


if __name__ == "__main__":
    main()
