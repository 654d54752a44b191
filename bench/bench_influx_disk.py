"""On-disk bytes per message of loaxa telemetry in a real InfluxDB 1.x (fully compacted).

    flock /tmp/loaxa-bench.lock .venv/bin/python bench/bench_influx_disk.py \
        [--stations 200] [--hours 24] [--interval-s 60] [--index inmem|tsi1]

Why: docs/NATIONAL.md projects a year of data at 100k stations from these figures.

What it does: a fleet of ``--stations`` agents (2 loudspeaker clusters each, two one-hour
programs a day) sends ``loaxa.payloads.Telemetry`` every ``--interval-s`` for ``--hours``
(at least 24, so every run has the same share of on-air readings).
Each reading goes through the collector's own code (``StorageSink`` ->
``points_for_payload`` + one ``clock_skew`` point per station per minute, line protocol of
``collector/storage/line_protocol.py``) and ``V1Writer`` to a throwaway InfluxDB 1.x
(``loaxa.localservers``), in time order, batches of 5000 as the spool drains them. The server is
told to snapshot and fully compact cold shards after 1 s; the data folder is measured once its
size and file list stop changing (every shard one TSM generation, WAL empty). ``count`` queries
check that every point is there before anything is measured.

Figures (printed, and JSON in ``bench/results/influx-disk-<UTC>.json``): points, field values,
bytes of line protocol and of JSON payloads, TSM bytes, index bytes (tsi1 files or the series
file), WAL left, bytes per point, per field value and per message, the share of on-air
readings, and the projection to a year at 100k stations. Values are a model
of real readings (rounded as agent/convert.py rounds them, slow drifts, on-air/off-air levels):
compression depends on it, so the model and its seed are part of the result.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from collector.ingest.sink import StorageSink
from collector.ingest.validate import Accepted
from collector.storage.config import InfluxConfig
from collector.storage.writers import V1Writer
from loaxa.localservers import InfluxDB, wait_until
from loaxa.payloads import Audio, Cluster, Power, Telemetry, to_json
from loaxa.topics import Kind

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
ON_AIR_UTC_H = ((22.5, 23.5), (10.0, 11.0))  # 05:30-06:30 and 17:00-18:00 Asia/Ho_Chi_Minh
BATCH = 5000
DB = "loaxa"
YEAR_MS = 365 * 86_400_000
RESULTS = Path(__file__).resolve().parent / "results"


class _Lines:
    """The sink's storage: collects the lines the collector would spool."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def append(self, lines: list[str]) -> None:
        self.lines.extend(lines)


class Station:
    """One agent's readings: slow drifts, rounded as the agent rounds them."""

    def __init__(self, index: int, rng: random.Random) -> None:
        self.id = f"st-{index:05d}"
        self.commune = f"{10000 + index // 3:05d}"  # ~3 stations per commune
        self.rng = rng
        self.offset_ms = rng.randrange(60_000)  # agents start at any moment
        self.mains = rng.uniform(210, 230)
        self.battery = rng.uniform(12.9, 13.4)
        self.temp = rng.uniform(24, 34)
        self.uptime = rng.randrange(86_400 * 30)

    def reading(self, seq: int, ts_ms: int, interval_s: float) -> Telemetry:
        r = self.rng
        hour = (ts_ms // 1000 % 86_400) / 3600
        on_air = any(a <= hour < b for a, b in ON_AIR_UTC_H)
        self.mains = min(245.0, max(190.0, self.mains + r.gauss(0, 0.4)))
        self.battery = min(14.2, max(12.0, self.battery + r.gauss(0, 0.005)))
        self.temp = min(60.0, max(10.0, self.temp + r.gauss(0, 0.05)))
        rms = r.gauss(-18, 2.5) if on_air else r.gauss(-86, 1.5)
        clusters = [
            Cluster(id=c, kind=kind, relay_on=on_air, rms_dbfs=float(round(rms - 2 - c)))
            for c, kind in ((0, "wired"), (1, "fm"))
        ]
        return Telemetry(
            station=self.id,
            session=3,
            seq=seq,
            ts=ts_ms,
            uptime_s=self.uptime + int(seq * interval_s),
            agent_uptime_s=int(seq * interval_s) + 40,
            amp="on" if on_air else "off",
            audio=Audio(
                rms_dbfs=round(rms, 2),
                peak_dbfs=round(min(0.0, rms + r.gauss(12, 2)), 2),
                clip_ratio=round(max(0.0, r.gauss(0, 0.0005)), 4) if on_air else 0.0,
                silent=not on_air,
                source="mcu",
            ),
            power=Power(
                mains_v=round(self.mains, 1), battery_v=round(self.battery, 2), on_battery=False
            ),
            temp_c=round(self.temp, 2),
            clusters=clusters,
        )


def fleet_lines(
    stations: int, hours: float, interval_s: float, seed: int, sizes: list[int], on_air: list[int]
) -> Iterator[list[str]]:
    """Batches of lines in time order (one tick of the whole fleet at a time); appends each
    telemetry JSON payload's size to ``sizes`` and 1 per reading taken on air to ``on_air``."""
    rng = random.Random(seed)
    fleet = [Station(i, rng) for i in range(stations)]
    out = _Lines()
    sink = StorageSink(out)  # the daemon's sink: points + clock skew once per station-minute
    ticks = int(hours * 3600 / interval_s)
    interval_ms = int(interval_s * 1000)
    for k in range(ticks):
        accepted = []
        for st in fleet:
            ts = T0 + st.offset_ms + k * interval_ms + rng.randrange(20)  # scheduler jitter
            payload = st.reading(k, ts, interval_s)
            sizes.append(len(to_json(payload)))
            if payload.amp == "on":
                on_air.append(1)
            received = ts + rng.randrange(150, 1500)  # 3G latency
            accepted.append(
                Accepted("ha-noi", st.commune, st.id, Kind.TELEMETRY, payload, received)
            )
        sink.append(accepted)
        if len(out.lines) >= BATCH or k == ticks - 1:
            yield out.lines
            out.lines = []


def configure(server: InfluxDB, index: str) -> None:
    """Snapshot and fully compact cold shards after 1 s, so the folder reaches its final form
    in seconds instead of the defaults' 10 min / 4 h."""
    text = server.conf.read_text()
    extra = (
        f'  index-version = "{index}"\n'
        '  cache-snapshot-write-cold-duration = "1s"\n'
        '  compact-full-write-cold-duration = "1s"\n'
    )
    server.conf.write_text(text.replace("[data]\n", "[data]\n" + extra, 1))


def folder_bytes(path: Path) -> dict[str, int]:
    """Allocated bytes (as ``du`` counts them: some index files are sparse, preallocated) per
    kind of file below ``path``: tsm, index (tsi1 files, the series file), wal, other."""
    sizes = {"tsm": 0, "index": 0, "wal": 0, "other": 0}
    for f in path.rglob("*"):
        if not f.is_file():
            continue
        n = f.stat().st_blocks * 512
        if f.suffix == ".tsm":
            sizes["tsm"] += n
        elif f.suffix == ".wal":
            sizes["wal"] += n
        elif "index" in f.parts or "_series" in f.parts or f.suffix in (".tsl", ".tsi"):
            sizes["index"] += n
        else:
            sizes["other"] += n
    return sizes


def apparent_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def settled(workdir: Path, polls: int = 5):
    """A predicate true once the data and WAL folders kept the same files and sizes for
    ``polls`` consecutive calls, with the WAL empty and one TSM generation per shard."""
    history: list[tuple] = []

    def check() -> bool:
        files = tuple(
            sorted(
                (str(f), f.stat().st_size)
                for d in ("data", "wal")
                for f in (workdir / d).rglob("*")
                if f.is_file()
            )
        )
        history.append(files)
        wal = sum(n for name, n in files if name.endswith(".wal"))
        shards: dict[str, set[str]] = {}
        for name, _ in files:
            if name.endswith(".tsm"):
                shards.setdefault(str(Path(name).parent), set()).add(Path(name).name.split("-")[0])
        one_generation = bool(shards) and all(len(g) == 1 for g in shards.values())
        return (
            wal == 0
            and one_generation
            and len(history) >= polls
            and len(set(history[-polls:])) == 1
        )

    return check


def count(server: InfluxDB, measurement: str) -> int:
    rows = server.rows(f'SELECT count("{_first_field(measurement)}") FROM "{measurement}"', DB)
    return int(rows[0]["count"]) if rows else 0


def _first_field(measurement: str) -> str:
    return {"telemetry": "seq", "cluster": "relay_on", "clock_skew": "skew_ms"}[measurement]


def project(bytes_per_point: float, points_per_msg: float, interval_s: float) -> dict[str, float]:
    msgs_per_year = 100_000 * YEAR_MS / (interval_s * 1000)
    points = msgs_per_year * points_per_msg
    return {"points": points, "bytes": points * bytes_per_point}


def run(args: argparse.Namespace) -> dict:
    sizes: list[int] = []
    on_air: list[int] = []
    with tempfile.TemporaryDirectory(prefix="loaxa-disk-") as tmp:
        workdir = Path(tmp)
        server = InfluxDB(workdir)
        configure(server, args.index)
        server.start()
        try:
            server.create_database(DB)
            writer = V1Writer(InfluxConfig(url=server.url, db=DB))
            lines_total = lp_bytes = field_values = 0
            start = time.perf_counter()
            for lines in fleet_lines(
                args.stations, args.hours, args.interval_s, args.seed, sizes, on_air
            ):
                for k in range(0, len(lines), BATCH):
                    writer.write(lines[k : k + BATCH])
                lines_total += len(lines)
                # our model's lines have no space inside tags or string values
                field_values += sum(x.split(" ", 2)[1].count(",") + 1 for x in lines)
                lp_bytes += sum(len(x) + 1 for x in lines)
            write_s = time.perf_counter() - start
            writer.close()
            messages = len(sizes)
            stored = {m: count(server, m) for m in ("telemetry", "cluster", "clock_skew")}
            if stored["telemetry"] != messages or sum(stored.values()) != lines_total:
                raise SystemExit(
                    f"InfluxDB holds {stored}, expected {messages} messages / "
                    f"{lines_total} points: not measuring a partial write"
                )
            start = time.perf_counter()
            wait_until(settled(workdir), timeout=900, interval=2.0, what="compaction to settle")
            settle_s = time.perf_counter() - start
            files = folder_bytes(workdir / "data")
            files["wal"] += folder_bytes(workdir / "wal")["wal"]
            apparent = apparent_bytes(workdir / "data")
            listing = sorted(str(f.relative_to(workdir)) for f in (workdir / "data").rglob("*"))
        finally:
            server.stop()
    on_disk = files["tsm"] + files["index"] + files["other"]  # the data folder, WAL apart
    per_point = on_disk / lines_total
    points_per_msg = lines_total / messages
    return {
        "when": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "influxdb": "1.6 (Debian influxdb), index " + args.index,
        "load_1_5_15": os.getloadavg(),
        "model": {
            "stations": args.stations,
            "hours": args.hours,
            "interval_s": args.interval_s,
            "seed": args.seed,
            "clusters_per_station": 2,
            "on_air_h_per_day": 2,
        },
        "on_air_share": len(on_air) / len(sizes),
        "messages": messages,
        "points": lines_total,
        "points_by_measurement": stored,
        "points_per_message": points_per_msg,
        "field_values_per_message": field_values / messages,
        "json_payload_bytes": {"mean": sum(sizes) / messages, "min": min(sizes), "max": max(sizes)},
        "line_protocol_bytes_per_point": lp_bytes / lines_total,
        "files_bytes": files,
        "apparent_data_bytes": apparent,
        "data_files": listing[:60],
        "bytes_per_point": per_point,
        "bytes_per_field_value": on_disk / field_values,
        "bytes_per_message": on_disk / messages,
        "write_seconds": write_s,
        "settle_seconds": settle_s,
        "projection_100k_stations_year": project(per_point, points_per_msg, args.interval_s),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--stations", type=int, default=200)
    ap.add_argument("--hours", type=float, default=24.0)
    ap.add_argument("--interval-s", type=float, default=60.0)
    ap.add_argument("--index", choices=("inmem", "tsi1"), default="inmem")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    if args.hours < 24:
        ap.error("--hours must be >= 24: a shorter run misses the on-air hours of the model's day")
    result = run(args)
    year = result["projection_100k_stations_year"]
    print(
        f"{result['messages']:,} messages, {result['points']:,} points "
        f"({result['points_per_message']:.2f}/msg, {result['field_values_per_message']:.0f} "
        f"field values/msg), written in {result['write_seconds']:.0f} s, "
        f"compaction settled in {result['settle_seconds']:.0f} s"
    )
    print(
        f"telemetry JSON {result['json_payload_bytes']['mean']:.0f} B mean; line protocol "
        f"{result['line_protocol_bytes_per_point']:.0f} B/point"
    )
    print(
        f"on disk: TSM {result['files_bytes']['tsm']:,} B, index {result['files_bytes']['index']:,}"
        f" B, WAL left {result['files_bytes']['wal']:,} B"
        f" (apparent size of the data folder {result['apparent_data_bytes']:,} B)"
    )
    print(
        f"{result['bytes_per_point']:.2f} B/point, {result['bytes_per_field_value']:.2f} "
        f"B/field value, {result['bytes_per_message']:.1f} B/message"
    )
    print(
        f"100k stations at {args.interval_s:g} s for a year: {year['points']:.3g} points, "
        f"{year['bytes'] / 1e9:,.0f} GB"
    )
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / f"influx-disk-{stamp}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
