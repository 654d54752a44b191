"""A collector group (collector/GROUP.md) end to end: throughput with 1, 2 and 4 members, and
the failover time when one member is killed -9 under load.

    .venv/bin/python bench/bench_group.py [--quick] [--messages N] [--stations N]
        [--members 1,2,4] [--kill 2,4] [--partitions 8] [--out FILE]

One real Mosquitto and InfluxDB 1.x (loaxa.localservers). The load is bench/ingest_load.py's
(N stations' telemetry over 100 communes, pre-encoded, QoS 1, from publisher processes). A run:
fresh database; M ``loaxa collector`` processes with ``[group]`` start and share the
partitions (each member's ``status-*.json``); one probe reading per partition until InfluxDB
holds them; then every publisher at once; the clock stops when InfluxDB holds every message
(bench/ingest_run.py ``wait_stored``). With ``--kill``: once a third is stored, member 0 is
killed -9; failover = the last CONNACK of a moved partition's session (its new owner's
``connected_ms``) minus the kill. Figures are printed, never asserted; JSON goes to
``bench/results/group-<UTC time>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.ingest_load import (
    PROVINCE,
    commune_of,
    messages,
    publish_all,
    restamp,
    station_id,
    write_inventory,
)
from bench.ingest_run import (
    Influx,
    cpu_seconds,
    run_publishers,
    stop_process,
    wait_stored,
)
from bench.results_file import write_results
from collector.group.partitions import partition_of
from loaxa.localservers import InfluxDB, Mosquitto, wait_until
from loaxa.payloads import Telemetry, to_json
from loaxa.topics import Kind, station_topic

ROOT = Path(__file__).resolve().parents[1]


def config_text(work: Path, inventory: Path, port: int, influx: str, db: str, parts: int) -> str:
    return (
        f'inventory = "{inventory}"\n[daemon]\nstate_db = "state.sqlite"\n'
        f'[mqtt]\nport = {port}\nclient_id = "bench-{db}"\n'
        f'[influx]\nurl = "{influx}"\ndb = "{db}"\ncreate_database = true\n'
        '[spool]\npath = "spool.sqlite"\ndead_letter_path = "dead.jsonl"\n'
        "[http]\nenabled = false\n"
        f'[group]\ndir = "{work / "group"}"\npartitions = {parts}\npoll_s = 1.0\n'
    )


def statuses(folder: Path, pids: set[int]) -> list[dict]:
    out = []
    for path in folder.glob("status-*.json"):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # being replaced: read it next time
        if data.get("pid") in pids:
            out.append(data)
    return out


def owned(folder: Path, pids: set[int]) -> dict[int, dict]:
    """Partition -> its running entry (connected ones only), over the live members' status."""
    out: dict[int, dict] = {}
    for s in statuses(folder, pids):
        for k, p in s["partitions"].items():
            if p["connected_ms"] is not None:
                out[int(k)] = p
    return out


def probes(stations: int, parts: int, now: int) -> list[tuple[str, bytes]]:
    """One reading (fixed ts) of a station in each partition: stored once, however often sent."""
    first: dict[int, int] = {}
    for i in range(stations):
        first.setdefault(partition_of(commune_of(i), parts), i)
    out = []
    for i in first.values():
        t = Telemetry(station=station_id(i), session=9, seq=0, ts=now, agent_uptime_s=1)
        out.append(
            (station_topic(PROVINCE, commune_of(i), station_id(i), Kind.TELEMETRY), to_json(t))
        )
    return out


class Run:
    def __init__(self, bench: GroupBench, members: int, kill: bool) -> None:
        self.b, self.members, self.kill = bench, members, kill
        self.name = f"m{members}{'-kill' if kill else ''}"
        self.db = f"group_{self.name.replace('-', '_')}"
        self.work = bench.work / self.name
        self.work.mkdir()
        self.result: dict[str, object] = {"run": self.name, "members": members, "kill": kill}

    def go(self) -> dict[str, object]:
        b = self.b
        b.influx.query(f'CREATE DATABASE "{self.db}"')
        cfg = self.work / "collector.toml"
        cfg.write_text(config_text(self.work, b.inventory, b.broker.port, b.influxd.url, self.db,
                                   b.args.partitions))  # fmt: skip
        procs = [self._member(cfg, m) for m in range(self.members)]
        try:
            return self._measure(procs)
        finally:
            for p in procs:
                stop_process(p)

    def _member(self, cfg: Path, m: int) -> subprocess.Popen:
        with open(self.work / f"member-{m}.log", "ab") as out:
            argv = [sys.executable, "-m", "loaxa.cli", "collector", "--config", str(cfg)]
            return subprocess.Popen(argv, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)

    def _measure(self, procs: list[subprocess.Popen]) -> dict[str, object]:
        b, group = self.b, self.work / "group"
        pids = {p.pid for p in procs}
        share = -(-b.args.partitions // self.members)
        wait_until(
            lambda: len(owned(group, pids)) == b.args.partitions
            and all(len(s["partitions"]) <= share for s in statuses(group, pids)),
            120, interval=0.2, what=f"{self.name}: partitions shared and connected",
        )  # fmt: skip
        now = int(time.time() * 1000)
        ready = probes(b.args.stations, b.args.partitions, now)
        wait_until(lambda: publish_all(b.broker.port, "bench-probe", ready, 1) is not None
                   and b.influx.count(self.db) >= len(ready), 120, interval=0.3,
                   what=f"{self.name}: probes stored")  # fmt: skip
        base = b.influx.count(self.db)
        cpu0 = sum(cpu_seconds(p.pid) for p in procs)
        out, pubs, t0 = run_publishers(b.broker.port, b.fresh(), 1)
        if self.kill:
            self._kill_under_load(procs, base)
        alive = [p for p in procs if p.poll() is None]
        stored, t_end = wait_stored(b.influx, self.db, base + b.total, b.args.stall_s, alive)
        cpu = sum(cpu_seconds(p.pid) for p in alive) + self.result.pop("cpu_killed", 0.0)
        spans = [out.get(timeout=60) for _ in pubs]
        for p in pubs:
            p.join(10)
        seconds = t_end - t0
        self.result.update(
            messages=b.total, stored=stored - base, lost=base + b.total - stored,
            seconds=round(seconds, 2), msg_per_s=round((stored - base) / seconds),
            members_cpu_us_per_msg=round(1e6 * (cpu - cpu0) / max(1, stored - base), 1),
            publish_s=round(max(s for s, _ in spans), 2),
        )  # fmt: skip
        return self.result

    def _kill_under_load(self, procs: list[subprocess.Popen], base: int) -> None:
        b, victim = self.b, procs[0]
        group = self.work / "group"
        wait_until(lambda: b.influx.count(self.db) >= base + b.total // 3, 300, interval=0.1,
                   what="a third stored before the kill")  # fmt: skip
        mine = {int(k) for s in statuses(group, {victim.pid}) for k in s["partitions"]}
        self.result["cpu_killed"] = cpu_seconds(victim.pid)
        killed_ms = time.time() * 1000
        victim.send_signal(signal.SIGKILL)
        victim.wait(30)
        survivors = {p.pid for p in procs[1:]}

        def moved() -> dict[int, dict]:
            now = owned(group, survivors)
            return {k: now[k] for k in mine if k in now and now[k]["since_ms"] >= killed_ms}

        wait_until(lambda: len(moved()) == len(mine), 120, interval=0.05, what="failover")
        taken = moved()
        self.result.update(
            partitions_moved=len(mine),
            failover_s=round((max(p["connected_ms"] for p in taken.values()) - killed_ms) / 1e3, 3),
            partition_start_s=max(p["start_s"] for p in taken.values()),
        )  # fmt: skip


class GroupBench:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args, self.work = args, work
        for d in ("mosquitto", "influxdb"):
            (work / d).mkdir()
        self.broker = Mosquitto(work / "mosquitto", persistence=False)
        self.influxd = InfluxDB(work / "influxdb")
        self.inventory = write_inventory(work / "inventory.toml", args.stations)
        self.stamped_ms = int(time.time() * 1000)
        items = messages(range(args.stations), max(1, args.messages // args.stations),
                         self.stamped_ms, seed=16)  # fmt: skip
        self.chunks = [
            [m for m in items if int(m[0].split("/")[4][3:]) % args.publishers == i]
            for i in range(args.publishers)
        ]  # each station's readings from one publisher, in order
        self.total = len(items)

    def fresh(self) -> list[list[tuple[str, bytes]]]:
        now = int(time.time() * 1000)
        self.chunks = [restamp(c, now - self.stamped_ms) for c in self.chunks]
        self.stamped_ms = now
        return self.chunks

    def __enter__(self) -> GroupBench:
        self.broker.start()
        self.influxd.start()
        self.influx = Influx(self.influxd.url)
        return self

    def __exit__(self, *exc: object) -> None:
        self.broker.stop()
        self.influxd.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a few seconds per run")
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--stations", type=int, default=2_000)
    ap.add_argument("--publishers", type=int, default=2)
    ap.add_argument("--members", default="1,2,4")
    ap.add_argument("--kill", default="2,4", help="member counts to also run with a kill -9")
    ap.add_argument("--partitions", type=int, default=8)
    ap.add_argument("--stall-s", type=float, default=20.0)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    if args.quick:
        args.messages, args.stations = min(args.messages, 10_000), min(args.stations, 500)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    plan = [(int(m), False) for m in args.members.split(",") if m]
    plan += [(int(m), True) for m in args.kill.split(",") if m]
    results = []
    with (
        tempfile.TemporaryDirectory(prefix="loaxa-group-") as tmp,
        GroupBench(args, Path(tmp)) as b,
    ):
        print(f"{b.total:,} messages, {args.stations:,} stations, {args.partitions} partitions, "
              f"load {os.getloadavg()[0]:.2f}", flush=True)  # fmt: skip
        for members, kill in plan:
            res = Run(b, members, kill).go()
            res["load1"] = round(os.getloadavg()[0], 2)
            results.append(res)
            print(json.dumps(res), flush=True)
    meta = {
        "machine": platform.machine(), "cpus": os.cpu_count(),
        "python": platform.python_version(), "quick": args.quick, "messages": b.total,
        "stations": args.stations, "publishers": args.publishers,
        "partitions": args.partitions,
    }  # fmt: skip
    write_results("group", {"meta": meta, "results": results}, args.out)


if __name__ == "__main__":
    main()
