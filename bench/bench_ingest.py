"""Ingest, end to end, side by side: Mosquitto -> consumer -> InfluxDB, at QoS 1 and QoS 0.

    .venv/bin/python bench/bench_ingest.py [--quick] [--messages N] [--stations N]
        [--publishers N] [--only collector,bridge,...] [--qos 1,0] [--out FILE]

One real Mosquitto and one real InfluxDB 1.x (loaxa.localservers) serve every run. Consumers
(``bench/ingest_consumers.py``): (a) the limits: ``bare`` paho subscriber that only counts and
``raw-write`` (pre-encoded lines POSTed to /write in batches of 5000, no MQTT); (b)
``node-red``; (c) ``bridge`` (minimal paho + influxdb-client); (d) ``collector``. How a run is
measured: ``bench/ingest_run.py``. Prints a table and the collector's ratios to Node-RED, and
writes JSON to ``bench/results/ingest-<UTC time>.json``. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import http.client
import json
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import ingest_consumers as consumers
from bench.ingest_load import (
    messages,
    partition_filters,
    publish_all,
    restamp,
    write_inventory,
)
from bench.ingest_run import (
    Influx,
    Result,
    cpu_seconds,
    probe_message,
    run_publishers,
    stop_process,
    wait_stored,
)
from loaxa.localservers import InfluxDB, Mosquitto, free_port, wait_until

RESULTS = Path(__file__).resolve().parent / "results"
ALL = ["bare", "raw-write", "node-red", "bridge", "collector"]


class Bench:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args, self.work = args, work
        for d in ("mosquitto", "influxdb"):
            (work / d).mkdir()
        # The project's broker settings (deploy/mosquitto: 100 unacknowledged QoS 1 messages in
        # flight per client), or --inflight N to see what the window costs an ack-after-fsync
        # consumer (a later line in mosquitto.conf overrides an earlier one).
        extra = f"max_inflight_messages {args.inflight}" if args.inflight else ""
        self.broker = Mosquitto(work / "mosquitto", persistence=False, extra=extra)
        self.influxd = InfluxDB(work / "influxdb")
        self.inventory = write_inventory(work / "inventory.toml", args.stations)
        per_station = max(1, args.messages // args.stations)
        self.stamped_ms = int(time.time() * 1000)
        items = messages(range(args.stations), per_station, self.stamped_ms, seed=6)
        # Stations are split between publishers, so each station's readings stay in order.
        self.chunks = [items[i :: args.publishers] for i in range(args.publishers)]
        if args.stations % args.publishers:
            self.chunks = [
                [m for m in items if int(m[0].split("/")[4][3:]) % args.publishers == i]
                for i in range(args.publishers)
            ]
        self.total = len(items)
        self.node_red_home: Path | str | None = None

    def __enter__(self) -> Bench:
        self.broker.start()
        self.influxd.start()
        self.influx = Influx(self.influxd.url)
        return self

    def __exit__(self, *exc) -> None:
        self.broker.stop()
        self.influxd.stop()

    def servers_cpu(self) -> dict[str, float]:
        assert self.broker.proc and self.influxd.proc
        return {
            "mosquitto": cpu_seconds(self.broker.proc.pid),
            "influxd": cpu_seconds(self.influxd.proc.pid),
        }

    # --- runs ------------------------------------------------------------------------
    def run(self, name: str, qos: int) -> Result:
        res = Result(name, qos, self.total)
        try:
            if name == "raw-write":
                self._raw_write(res)
            elif name == "bare":
                self._bare(res)
            else:
                self._consumer(name, res)
        except Exception as err:  # one consumer failing must not lose the others' figures
            res.note = f"failed: {type(err).__name__}: {err}"
        return res

    def _start(self, name: str, db: str, qos: int) -> list[subprocess.Popen]:
        cid = f"bench-{name}-q{qos}"
        log = self.work / f"{name}-q{qos}.log"
        if name == "bridge":
            return [consumers.bridge(self.broker.port, self.influxd.url, db, cid, log)]
        if name.startswith("collector"):
            parts = _parts(name)
            return [
                consumers.collector(
                    self.work / f"{name}-q{qos}-{k}",
                    self.inventory,
                    self.broker.port,
                    self.influxd.url,
                    db,
                    f"{cid}-{k}",
                    free_port(),
                    self.work / f"{name}-q{qos}-{k}.log",
                    partition_filters(k, parts) if parts > 1 else None,
                )
                for k in range(parts)
            ]
        if name == "node-red":
            if self.node_red_home is None:
                self.node_red_home = consumers.install_node_red()
            if isinstance(self.node_red_home, str):
                raise RuntimeError(self.node_red_home)
            return [
                consumers.node_red(
                    self.node_red_home,
                    self.work / f"node-red-q{qos}",
                    self.broker.port,
                    self.influxd.port,
                    db,
                    cid,
                    free_port(),
                    log,
                )
            ]
        raise ValueError(f"unknown consumer {name!r}")

    def _consumer(self, name: str, res: Result) -> None:
        db = f"bench_{name.replace('-', '_')}_q{res.qos}"
        self.influx.query(f'CREATE DATABASE "{db}"')
        procs = self._start(name, db, res.qos)
        try:
            self._await_probes(db, procs)
            before = {name: _cpu(procs), **self.servers_cpu()}
            out, pubs, t0 = run_publishers(self.broker.port, self._fresh(), res.qos)
            n = len(procs)
            stored, t_end = wait_stored(self.influx, db, self.total + n, self.args.stall_s, procs)
            after = {name: _cpu(procs), **self.servers_cpu()}
            self._finish(res, out, pubs, t0, stored - n, t_end, before, after)
        finally:
            for proc in procs:
                stop_process(proc)

    def _await_probes(self, db: str, procs: list[subprocess.Popen]) -> None:
        """One probe per process (each in a commune of its own partition) until all stored."""
        now = int(time.time() * 1000)
        probes = [probe_message(now, k) for k in range(len(procs))]

        def stored() -> bool:
            for proc in procs:
                if proc.poll() is not None:
                    raise RuntimeError(f"consumer exited with {proc.returncode} before ready")
            publish_all(self.broker.port, "bench-probe", probes, 1)
            time.sleep(0.2)  # give the consumer its batch interval before counting
            return self.influx.count(db) >= len(probes)

        wait_until(stored, 120, interval=0.05, what=f"consumer ready ({db})")

    def _fresh(self) -> list[list[tuple[str, bytes]]]:
        now = int(time.time() * 1000)
        chunks = [restamp(c, now - self.stamped_ms) for c in self.chunks]
        self.chunks, self.stamped_ms = chunks, now
        return chunks

    def _bare(self, res: Result) -> None:
        proc = consumers.bare(self.broker.port, self.total, f"bench-bare-q{res.qos}")
        try:
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != "ready":
                raise RuntimeError("bare counter did not subscribe")
            before = {"bare": cpu_seconds(proc.pid), **self.servers_cpu()}
            out, pubs, t0 = run_publishers(self.broker.port, self._fresh(), res.qos)
            line = _readline_within(proc, self.args.stall_s + self.total / 2000)
            t_end = time.perf_counter()
            after = {"bare": cpu_seconds(proc.pid), **self.servers_cpu()}
            stored = int(line.split()[1]) if line.startswith("done") else 0
            self._finish(res, out, pubs, t0, stored, t_end, before, after)
        finally:
            stop_process(proc)

    def _finish(self, res, out, pubs, t0, stored, t_end, before, after) -> None:
        res.stored, res.seconds = stored, t_end - t0
        res.cpu_s = {k: after[k] - before[k] for k in before}
        spans = [out.get(timeout=60) for _ in pubs]
        for p in pubs:
            p.join(10)
        res.publish_s = max(s for s, _ in spans)
        res.cpu_s["publishers"] = sum(c for _, c in spans)

    def _raw_write(self, res: Result) -> None:
        """The InfluxDB limit: the collector's own lines for the same messages, POSTed."""
        from collector.storage.points import telemetry_points
        from loaxa.payloads import Telemetry

        db = f"bench_raw_write_q{res.qos}"
        self.influx.query(f'CREATE DATABASE "{db}"')
        lines = [
            x
            for chunk in self.chunks
            for topic, payload in chunk
            for x in telemetry_points(
                Telemetry.model_validate_json(payload), "p", topic.split("/")[3]
            )
        ]
        before = self.servers_cpu()
        t0 = time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", self.influxd.port, timeout=60)
        for i in range(0, len(lines), 5000):
            conn.request("POST", f"/write?db={db}&precision=ms", "\n".join(lines[i : i + 5000]))
            r = conn.getresponse()
            r.read()
            if r.status != 204:
                raise RuntimeError(f"/write answered {r.status}")
        t_end = time.perf_counter()
        conn.close()
        after = self.servers_cpu()
        # Counted like the others (polled until complete or stalled), timed to the last 204.
        res.stored, _ = wait_stored(self.influx, db, self.total, self.args.stall_s)
        res.seconds = t_end - t0
        res.cpu_s = {k: after[k] - before[k] for k in before}
        res.note = f"{len(lines)} lines ({len(lines) / res.seconds:,.0f} points/s)"


def _parts(name: str) -> int:
    """``collector`` is one process, ``collector-4p`` four (communes partitioned)."""
    m = re.fullmatch(r"collector(?:-(\d)p)?", name)
    if m is None:
        raise ValueError(f"unknown consumer {name!r}")
    return int(m.group(1) or 1)


def _cpu(procs: list[subprocess.Popen]) -> float:
    return sum(cpu_seconds(p.pid) for p in procs)


def _readline_within(proc, timeout: float) -> str:
    import select

    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    return proc.stdout.readline().strip() if ready else ""


def table(results: list[Result]) -> str:
    rows = [
        f"{'consumer':<11} {'QoS':>3} {'msg/s':>8} {'lost':>6} {'s':>6}  "
        f"{'µs CPU/msg: consumer':>21} {'broker':>7} {'influxd':>8} {'publishers':>10}  note"
    ]
    for r in results:
        own = r.cpu_us_per_msg(r.consumer) if r.consumer in r.cpu_s else float("nan")
        rows.append(
            f"{r.consumer:<11} {r.qos:>3} {r.rate:>8,.0f} {r.lost:>6} {r.seconds:>6.2f}  "
            f"{own:>21.1f} {r.cpu_us_per_msg('mosquitto'):>7.1f} "
            f"{r.cpu_us_per_msg('influxd'):>8.1f} {r.cpu_us_per_msg('publishers'):>10.1f}  {r.note}"
        )
    return "\n".join(rows)


def ratios(results: list[Result]) -> dict[str, float]:
    """Collector / Node-RED: rate and CPU per message, per QoS, where both ran."""
    by = {(r.consumer, r.qos): r for r in results if r.stored and not r.note.startswith("fail")}
    out = {}
    for qos in (1, 0):
        c, n = by.get(("collector", qos)), by.get(("node-red", qos))
        if c and n:
            out[f"q{qos}_rate_collector_over_node_red"] = round(c.rate / n.rate, 2)
            out[f"q{qos}_cpu_collector_over_node_red"] = round(
                c.cpu_us_per_msg("collector") / n.cpu_us_per_msg("node-red"), 2
            )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="CI size: a few seconds per run")
    ap.add_argument("--messages", type=int, default=300_000)
    ap.add_argument("--stations", type=int, default=2_000)
    ap.add_argument("--publishers", type=int, default=2)
    ap.add_argument("--only", default=",".join(ALL), help=f"comma list of {ALL}, or collector-<N>p")
    ap.add_argument("--qos", default="1,0")
    ap.add_argument("--stall-s", type=float, default=15.0)
    ap.add_argument("--inflight", type=int, default=0, help="broker max_inflight_messages")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    if args.quick:
        args.messages, args.stations = min(args.messages, 10_000), min(args.stations, 500)
    names = [n for n in args.only.split(",") if n]
    unknown = {n for n in names if n not in ALL and not re.fullmatch(r"collector-\dp", n)}
    if unknown:
        ap.error(f"unknown consumer(s): {', '.join(sorted(unknown))}")
    # SIGTERM (timeout, make) unwinds like Ctrl-C: the servers and consumers are stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="loaxa-bench-") as tmp, Bench(args, Path(tmp)) as b:
        print(
            f"{b.total:,} messages from {args.stations:,} stations, "
            f"{args.publishers} publisher processes",
            flush=True,
        )
        for qos in (int(q) for q in args.qos.split(",")):
            for name in names:
                res = b.run(name, qos)
                results.append(res)
                print(table([res]).splitlines()[1], flush=True)
    print()
    print(table(results))
    rel = ratios(results)
    for k, v in rel.items():
        print(f"{k}: {v}")
    out = args.out or RESULTS / f"ingest-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "machine": platform.machine(),
        "cpus": __import__("os").cpu_count(),
        "python": platform.python_version(),
        "quick": args.quick,
        "messages": b.total,
        "stations": args.stations,
        "publishers": args.publishers,
        "broker_inflight": args.inflight or "project default (100)",
    }
    out.write_text(
        json.dumps(
            {"meta": meta, "results": [r.as_dict() for r in results], "ratios": rel}, indent=2
        )
        + "\n"
    )
    print(f"written: {out}")


if __name__ == "__main__":
    main()
