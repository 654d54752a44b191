"""Scale points: N simulated stations at their telemetry interval, one collector process.

    .venv/bin/python bench/bench_scale.py [--quick] [--points 1k,10k,100k,national]
        [--intervals N] [--out FILE]

Each point: a synthetic inventory (``loaxa.sim.inventory_gen.synthetic_inventory``, every
station with an agent), a fresh InfluxDB database, ``loaxa collector`` (defaults: spool with
fsync, health, alerts) started through ``bench/scale_collector.py`` (times its health tick),
and one publisher process sending every station's reading at its own phase of the interval in
real time (``bench/scale_load.py``), for ``intervals`` intervals. ``bench/scale_measure.py``
samples the stored count, CPU and RSS. Figures: offered vs stored msg/s in the steady part
(after the first interval), lost (InfluxDB count), backlog and the age of the oldest unstored
reading (max, and the drain after the last reading was sent), collector CPU and RSS (peak, and
once the health state holds every station), health tick durations, broker and influxd CPU.
A point **holds** when nothing is lost, the stored rate keeps up with the offered rate (>= 98 %)
and the lag stays bounded (storage has caught up within one interval of the last reading);
``lag_within_interval`` says whether it also never lagged the fleet by a whole interval.
Figures are printed and written to ``bench/results/scale-<UTC>.json``, never asserted.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.ingest_load import publish_all
from bench.ingest_run import Influx, stop_process
from bench.results_file import write_results
from bench.scale_load import plan, publish_on_schedule, write_scale_inventory
from bench.scale_measure import (
    Sampler,
    code_commit,
    lag_figures,
    log_problems,
    rss_kib,
    tick_figures,
    timeline,
    wait_stored,
    window_rates,
)
from loaxa.localservers import InfluxDB, Mosquitto, free_port, wait_until
from loaxa.payloads import Telemetry, to_json
from loaxa.topics import Kind, station_topic

HERE = Path(__file__).resolve().parent
_CTX = mp.get_context("fork")  # the publisher inherits the encoded readings
# name: (stations, interval_s, intervals)
POINTS = {
    "1k": (1_000, 60, 4),
    "10k": (10_000, 60, 4),
    "100k": (100_000, 60, 4),
    "national": (10_000, 10, 12),
    "quick": (300, 5, 4),
}


def collector_config(work: Path, inventory: Path, mqtt_port: int, influx_url: str, db: str,
                     http_port: int) -> Path:  # fmt: skip
    config = work / "collector.toml"
    config.write_text(
        f'inventory = "{inventory}"\n[daemon]\nstate_db = "state.sqlite"\n'
        f'[mqtt]\nport = {mqtt_port}\nclient_id = "scale-{db}"\n'
        f'[influx]\nurl = "{influx_url}"\ndb = "{db}"\ncreate_database = true\n'
        '[spool]\npath = "spool.sqlite"\ndead_letter_path = "dead.jsonl"\n'
        f"[http]\nport = {http_port}\n"
    )
    return config


def _publisher(port: int, items, t0_ms: int, out) -> None:
    rep = publish_on_schedule(port, "scale-pub", items, t0_ms)
    out.put(rep.__dict__)


def _tick_records(path: Path) -> list[dict]:
    """The tick log's complete lines: the collector appends while this reads, and a line
    without its newline yet is left for the next read."""
    text = path.read_text() if path.exists() else ""
    return [json.loads(x) for x in text.split("\n")[:-1] if x.strip()]


class Point:
    def __init__(self, name: str, stations: int, interval_s: int, intervals: int,
                 work: Path, broker: Mosquitto, influxd: InfluxDB,
                 index_patch: bool = False) -> None:  # fmt: skip
        self.name, self.stations, self.interval_s = name, stations, interval_s
        self.index_patch = index_patch
        self.work, self.broker, self.influxd = work / name, broker, influxd
        self.work.mkdir()
        self.db = f"scale_{name}"
        t = time.perf_counter()
        self.inv = write_scale_inventory(self.work / "inventory.toml", stations, interval_s)
        self.items = plan(self.inv, interval_s, intervals)
        self.prepare_s = time.perf_counter() - t
        self.influx = Influx(influxd.url)
        self.tick_log = self.work / "ticks.jsonl"

    def _start_collector(self) -> subprocess.Popen:
        http_port = free_port()
        self.health_url = f"http://127.0.0.1:{http_port}/healthz"
        config = collector_config(self.work, self.work / "inventory.toml", self.broker.port,
                                  self.influxd.url, self.db, http_port)  # fmt: skip
        argv = [sys.executable, str(HERE / "scale_collector.py"), str(self.tick_log),
                *(["--index-stations-of"] if self.index_patch else []),
                "--", "collector", "--config", str(config)]  # fmt: skip
        self.log = self.work / "collector.log"
        with open(self.log, "ab") as out:
            return subprocess.Popen(argv, cwd=HERE.parent, stdout=out, stderr=subprocess.STDOUT)

    def _await_ready(self, proc: subprocess.Popen) -> None:
        """A probe (the first station's reading, session 0, fixed ts: one point however often
        it is stored) until InfluxDB holds it: the collector is subscribed and writing."""
        st = self.inv["stations"][0]
        ts = int(time.time() * 1000) - 5000  # older than every scheduled reading
        topic = station_topic(self.inv["province"]["slug"], st["commune"], st["id"], Kind.TELEMETRY)
        probe = to_json(Telemetry(station=st["id"], session=0, seq=0, ts=ts, agent_uptime_s=1))

        def stored() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"collector exited {proc.returncode}: see {self.log}")
            publish_all(self.broker.port, "scale-probe", [(topic, probe)], 1)
            time.sleep(0.3)  # the collector's batch, before counting
            return self.influx.count(self.db) >= 1

        wait_until(stored, 300, interval=0.2, what=f"collector ready ({self.name})")

    def run(self) -> dict:
        proc = self._start_collector()
        try:
            return self._measure(proc)
        finally:
            stop_process(proc)

    def _measure(self, proc: subprocess.Popen) -> dict:
        self._await_ready(proc)
        pids = {"collector": proc.pid, "mosquitto": self.broker.proc.pid,
                "influxd": self.influxd.proc.pid}  # fmt: skip
        sampler = Sampler(self.influx, self.db, pids, self.health_url, baseline=1).start()
        t0_ms = int(time.time() * 1000) + 1500
        due = [(t0_ms + it.offset_ms) / 1000 for it in self.items]
        out = _CTX.Queue()
        pub = _CTX.Process(target=_publisher, args=(self.broker.port, self.items, t0_ms, out))
        pub.start()
        try:
            pub_report = out.get(timeout=due[-1] - time.time() + 600)
            t_sent = time.time()
            total = len(self.items)
            done = wait_stored(sampler, total, stall_s=60 + self.interval_s)
            t_stored = time.time()
            mem = self._memory(proc, 600 if done.stored >= total else 120)
        finally:
            sampler.stop()
            pub.join(10)
            if pub.is_alive():
                pub.terminate()
                pub.join(10)
        lines = _tick_records(self.tick_log)
        ticks = [x for x in lines if "tick_s" in x]
        running = lines[-1]["t"] if lines and lines[-1].get("start") else None
        steady_from = t0_ms / 1000 + self.interval_s
        stored = done.stored
        res = {
            "point": self.name,
            "stations": self.stations,
            "interval_s": self.interval_s,
            "messages": total,
            "stored": stored,
            "lost": total - stored,
            "publisher": pub_report,
            "steady": window_rates(sampler.samples, steady_from, due[-1], due),
            "whole_run": window_rates(sampler.samples, t0_ms / 1000, t_stored, due),
            **lag_figures(sampler.samples, due),
            "drain_after_last_sent_s": round(t_stored - max(due[-1], t_sent), 2)
            if stored >= total
            else None,
            "collector_rss_peak_mib": round(rss_kib(proc.pid, "VmHWM") / 1024, 1),
            **mem,
            "ticks_during_load": tick_figures(ticks, t0_ms / 1000, t_stored),
            "ticks_all": tick_figures(ticks, 0, time.time()),
            "tick_running_at_end_s": round(time.time() - running, 1) if running else 0,
            "index_stations_of_patch": self.index_patch,
            "count_query_max_s": round(max(s.query_s for s in sampler.samples), 3),
            "collector_log_warnings": log_problems(self.log),
            "prepare_s": round(self.prepare_s, 1),
            # (s after the first send, stored, backlog, age of the oldest unstored reading)
            "timeline": timeline(sampler.samples, t0_ms / 1000, due),
        }
        res["holds"] = _holds(res, self.interval_s)
        # Stricter: storage never lagged the fleet by a whole interval (dashboards stay fresh).
        res["lag_within_interval"] = res["max_age_unstored_s"] < self.interval_s
        return res

    def _memory(self, proc: subprocess.Popen, timeout_s: float) -> dict:
        """RSS once the health state holds every station (every one has a state)."""

        def all_seen() -> bool:
            seen = [x["seen"] for x in _tick_records(self.tick_log) if "seen" in x]
            return bool(seen) and seen[-1] >= self.stations

        try:
            wait_until(all_seen, timeout_s, interval=1.0, what="health state of every station")
            seen = True
        except TimeoutError:
            seen = False
        return {
            "health_holds_all": seen,
            "collector_rss_all_seen_mib": round(rss_kib(proc.pid) / 1024, 1),
        }


def _holds(res: dict, interval_s: float) -> bool:
    """Nothing lost, the stored rate keeps up with the offered rate, and the lag stays bounded:
    once the fleet stops, storage catches up within one interval (no backlog carried)."""
    steady, drain = res["steady"], res["drain_after_last_sent_s"]
    return bool(
        res["lost"] == 0
        and steady
        and steady["stored_msg_s"] >= 0.98 * steady["offered_msg_s"]
        and drain is not None
        and drain < interval_s
    )


def summary(r: dict) -> str:
    s, t = r["steady"], r["ticks_during_load"]
    name = r["point"] + ("+index" if r["index_stations_of_patch"] else "")
    return (
        f"{name:<15} {r['stations']:>7,} st/{r['interval_s']:>2} s  "
        f"offered {s.get('offered_msg_s', 0):>7,.1f}  "
        f"stored {s.get('stored_msg_s', 0):>7,.1f} msg/s  "
        f"lost {r['lost']}  max age {r['max_age_unstored_s']} s  "
        f"drain {r['drain_after_last_sent_s']} s  collector {s.get('cpu_collector_pct', 0)} % "
        f"RSS peak {r['collector_rss_peak_mib']} MiB (all seen {r['collector_rss_all_seen_mib']})  "
        f"tick p50/max {t.get('tick_p50_s')}/{t.get('tick_max_s')} s  "
        f"broker {s.get('cpu_mosquitto_pct', 0)} %  influxd {s.get('cpu_influxd_pct', 0)} %  "
        f"holds: {'yes' if r['holds'] else 'NO'}"
        f" (lag within one interval: {'yes' if r['lag_within_interval'] else 'no'})"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: 300 stations at 5 s")
    ap.add_argument("--points", default="1k,10k,100k,national")
    ap.add_argument("--intervals", type=int, default=0, help="override intervals per point")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument(
        "--index-stations-of",
        action="store_true",
        help="run the collector with a per-commune index for Inventory.stations_of "
        "(bench/scale_collector.py): what the daemon does once that scan is fixed",
    )
    args = ap.parse_args()
    names = ["quick"] if args.quick else [n for n in args.points.split(",") if n]
    if unknown := [n for n in names if n not in POINTS]:
        ap.error(f"unknown point(s) {unknown}; known: {list(POINTS)}")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    load0, commit = os.getloadavg(), code_commit()  # the code as the run starts
    results = []
    with tempfile.TemporaryDirectory(prefix="loaxa-scale-") as tmp:
        work = Path(tmp)
        (work / "mosquitto").mkdir()
        (work / "influxdb").mkdir()
        broker = Mosquitto(work / "mosquitto", persistence=False).start()
        influxd = InfluxDB(work / "influxdb").start()
        try:
            for name in names:
                stations, interval_s, intervals = POINTS[name]
                point = Point(name, stations, interval_s, args.intervals or intervals,
                              work, broker, influxd, args.index_stations_of)  # fmt: skip
                print(f"{name}: {len(point.items):,} readings prepared in "
                      f"{point.prepare_s:.1f} s; running", flush=True)  # fmt: skip
                res = point.run()
                results.append(res)
                print(summary(res), flush=True)
        finally:
            broker.stop()
            influxd.stop()
    meta = {"machine": platform.machine(), "cpus": os.cpu_count(),
            "python": platform.python_version(), "quick": args.quick, "commit": commit,
            "loadavg_start": load0, "loadavg_end": os.getloadavg()}  # fmt: skip
    write_results("scale", {"meta": meta, "results": results}, args.out)


if __name__ == "__main__":
    main()
