"""``loaxa simulate``: run a simulated fleet against a broker, or generate inventories.

    loaxa simulate --inventory FILE --broker HOST:PORT [--stations N] [--speed X] [--seed S]
                   [--faults default|demo|none] [--workdir DIR] [--interval S]
    loaxa simulate make-inventory (--cao-bang | --stations N) --out FILE [--seed S]

The simulation runs until Ctrl-C (or SIGTERM), logging each fault as it happens.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import signal
import sys
import tempfile
import threading
from datetime import datetime
from pathlib import Path

from collector.inventory import InventoryError, load_inventory
from loaxa.sim.fault_injector import FaultInjector
from loaxa.sim.faults import NO_FAULTS, FaultRates, build_plan
from loaxa.sim.fleet import Fleet
from loaxa.sim.inventory_gen import cao_bang_inventory, synthetic_inventory, write_toml
from loaxa.sim.showcase import with_showcase

log = logging.getLogger("loaxa.simulate")
PLAN_DAYS = 30  # simulated days of faults drawn ahead; a run rarely lasts longer
FAULT_PROFILES = {"default": FaultRates(), "demo": FaultRates().scaled(10), "none": NO_FAULTS}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "simulate", help="simulate a fleet of stations (real agent code) against a broker",
        description="Simulated controllers on ptys, each with the real agent, publishing to "
        "the broker; faults drawn from a seeded plan. Runs until Ctrl-C.",
    )  # fmt: skip
    p.add_argument("--inventory", type=Path, help="inventory TOML (config/cao-bang.demo.toml)")
    p.add_argument("--broker", help="broker HOST:PORT")
    p.add_argument("--stations", type=int, help="simulate only the first N stations")
    p.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="simulated seconds per real second (faults, telemetry interval)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the fault plan")
    p.add_argument(
        "--faults",
        choices=sorted(FAULT_PROFILES),
        default="default",
        help="fault rates: default (realistic), demo (10x), none",
    )
    p.add_argument(
        "--interval",
        type=float,
        default=60.0,
        help="telemetry interval in simulated seconds (default 60)",
    )
    p.add_argument(
        "--workdir",
        type=Path,
        help="agents' queues and state (default: a temporary folder, removed)",
    )
    p.set_defaults(func=run)
    sub = p.add_subparsers(dest="sim_command", metavar="SUBCOMMAND")
    mk = sub.add_parser("make-inventory", help="write a demo or synthetic inventory (TOML)")
    which = mk.add_mutually_exclusive_group(required=True)
    which.add_argument("--cao-bang", action="store_true", help="the Cao Bằng demo (161 stations)")
    which.add_argument(
        "--stations", dest="n_stations", type=int, help="a synthetic province with N stations"
    )
    mk.add_argument("--out", type=Path, required=True, help="TOML file to write")
    mk.add_argument("--seed", type=int, default=0)
    mk.add_argument(
        "--telemetry-interval",
        type=int,
        default=60,
        metavar="S",
        help="defaults.telemetry_interval_s: 60 / the speed the fleet will run at",
    )
    mk.set_defaults(func=make_inventory)  # fmt: skip


def make_inventory(args: argparse.Namespace) -> int:
    if args.telemetry_interval < 1:
        print("--telemetry-interval must be >= 1", file=sys.stderr)
        return 2
    if args.cao_bang:
        data = cao_bang_inventory(args.seed, telemetry_interval_s=args.telemetry_interval)
        how = "--cao-bang"
    else:
        if args.n_stations < 1:
            print("--stations must be >= 1", file=sys.stderr)
            return 2
        data = synthetic_inventory(args.n_stations, args.seed, args.telemetry_interval)
        how = f"--stations {args.n_stations}"
    if args.seed:
        how += f" --seed {args.seed}"
    if args.telemetry_interval != 60:
        how += f" --telemetry-interval {args.telemetry_interval}"
    write_toml(data, args.out, how=f"{how} --out {args.out.name}")
    print(f"wrote {args.out}: {len(data['stations'])} stations in {len(data['communes'])} communes")
    return 0


def _broker(text: str | None) -> tuple[str, int] | None:
    host, _, port = (text or "").rpartition(":")
    return (host, int(port)) if host and port.isdigit() and 0 < int(port) < 65536 else None


def run(args: argparse.Namespace) -> int:
    broker = _broker(args.broker)
    if args.inventory is None or broker is None:
        print("loaxa simulate needs --inventory FILE and --broker HOST:PORT", file=sys.stderr)
        return 2
    if args.speed <= 0 or (args.stations is not None and args.stations < 1):
        print("--speed must be > 0 and --stations >= 1", file=sys.stderr)
        return 2
    try:
        inventory = load_inventory(args.inventory)
    except InventoryError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    ids = list(inventory.stations)[: args.stations] if args.stations else None
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="loaxa-sim-"))
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
    if logging.getLogger().level > logging.DEBUG:
        # Faults are printed; 161 agents' own link warnings about them would drown the lines.
        for noisy in ("agent", "apscheduler", "loaxa.sim"):
            logging.getLogger(noisy).setLevel(logging.ERROR)
    fleet = Fleet(inventory, *broker, workdir, interval_s=args.interval, speed=args.speed,
                  seed=args.seed, stations=ids)  # fmt: skip
    plan = build_plan(inventory, PLAN_DAYS * 86400, args.seed, FAULT_PROFILES[args.faults],
                      fleet.station_ids)  # fmt: skip
    if args.faults == "demo":  # every kind of fault within the first simulated hour
        plan = with_showcase(plan, inventory, fleet.station_ids, within_s=3600)
    injector = FaultInjector(fleet, plan, on_event=lambda text, *_: print(text, flush=True))
    try:
        fleet.start()
        for gw, url in fleet.gateway_urls.items():
            print(f"serial gateway {gw}: {url}", flush=True)
        print(
            f"{datetime.now(inventory.province.tz):%H:%M} simulating {len(fleet.stations)} "
            f"stations at speed "
            f"{args.speed:g} (telemetry every {fleet.telemetry_interval_s:g} s), "
            f"{len(plan.faults)} faults planned, seed {args.seed}; Ctrl-C stops",
            flush=True,
        )
        injector.start()
        while not stop.wait(1.0):
            pass
    finally:
        injector.stop()
        fleet.stop()
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    print("simulation stopped", flush=True)
    return 0
