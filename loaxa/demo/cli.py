"""`loaxa demo`: run the whole system locally for a few minutes and leave its reports behind."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from pathlib import Path

from loaxa.demo.view import render


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo",
        help="run broker, InfluxDB, collector and a simulated Cao Bằng fleet locally",
        description="Starts Mosquitto and InfluxDB on free local ports (data under --workdir), "
        "the collector, and a fleet of real agents on simulated controllers with a seeded fault "
        "plan; shows the province live (share of communes operating against the 100% goal, "
        "stations not operating, alerts as they are sent to a simulated GSM modem and a local "
        "mail server). After --minutes or on Ctrl-C it writes the export of the demo period "
        "(CSV, XLSX, PDF, PNG) and a Grafana folder, prints where they are, and stops "
        "everything it started.",
    )
    p.add_argument("--minutes", type=float, default=5.0, help="demo length (default 5)")
    p.add_argument("--lang", choices=["vi", "en"], default="vi", help="screen and report language")
    p.add_argument(
        "--communes",
        type=int,
        default=12,
        help="communes of the Cao Bằng demo inventory to simulate (1-56, default 12)",
    )
    p.add_argument(
        "--speed", type=float, default=30.0, help="simulated time per real second (default 30)"
    )
    p.add_argument("--seed", type=int, default=1, help="seed of the fault plan")
    p.add_argument(
        "--workdir",
        type=Path,
        default=Path("var/demo"),
        help="where servers keep data and the outputs go (default var/demo)",
    )
    p.add_argument("--refresh", type=float, default=2.0, help="screen refresh, seconds")
    p.set_defaults(func=run)


def _redirect_logs(path: Path) -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)


def run(args: argparse.Namespace) -> int:
    from loaxa.demo.finish import export_period, grafana_folder
    from loaxa.demo.stack import DemoOptions, DemoStack

    if not 1 <= args.communes <= 56 or args.speed <= 0 or args.minutes <= 0:
        print("--communes must be 1-56, --speed and --minutes > 0", file=sys.stderr)
        return 2
    workdir = args.workdir.resolve() / time.strftime("%Y%m%d-%H%M%S")
    workdir.mkdir(parents=True)
    _redirect_logs(workdir / "demo.log")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    tty = sys.stdout.isatty()
    options = DemoOptions(workdir, args.communes, args.speed, args.seed, args.lang)
    stack = DemoStack(options)
    print(f"starting the demo in {workdir} (log: {workdir / 'demo.log'}) ...", flush=True)
    try:
        stack.start()
        deadline = time.monotonic() + args.minutes * 60
        last_plain = 0.0
        while not stop.wait(args.refresh) and time.monotonic() < deadline:
            text = render(stack.screen(), args.lang)
            if tty:
                print("\x1b[H\x1b[2J" + text, flush=True)
            elif time.monotonic() - last_plain >= 30:  # a log, not a screen: every 30 s
                print(text + "\n", flush=True)
                last_plain = time.monotonic()
        print("\nstopping the fleet and the collector, writing the export ...", flush=True)
        end_ms = int(time.time() * 1000)
        stack.stop_all_but_influx()
        inv = stack.collector.inventory
        paths = export_period(
            inv, stack.influx.url, stack.started_ms, end_ms, workdir / "export", args.lang
        )
        grafana = grafana_folder(inv, stack.influx.url, workdir / "grafana")
        print("export:")
        for path in paths:
            print(f"  {path}")
        print(f"grafana: {grafana} (dashboards + provisioning; see dashboards/README.md)")
        print(f"alerts: {len(stack.modem.sent)} SMS, {len(stack.mail.messages)} e-mails")
        print(f"InfluxDB data kept; to start it again: influxd -config {stack.influx.conf}")
        return 0
    finally:
        stack.stop()
