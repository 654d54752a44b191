"""``loaxa dashboards``: generate the dashboard JSON, push it to a Grafana, feed InfluxDB.

loaxa dashboards generate [--inventory FILE] [--out DIR] [--check]
loaxa dashboards push --url URL (--token-file FILE | env GRAFANA_TOKEN | --token TOKEN)
                      [--dir DIR] [--folder-uid UID] [--datasource-uid UID]
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
import time
from pathlib import Path

from collector.export.errors import ExportError
from collector.export.influx_query import InfluxReader
from collector.inventory import InventoryError, load_inventory
from collector.storage.config import InfluxConfig
from collector.storage.errors import StorageError
from collector.storage.writers import make_writer
from dashboards.feed_job import run_every, run_once
from dashboards.generate import EXAMPLE_INVENTORY, JSON_DIR, load_dashboards, stale_files, write_all
from dashboards.grafana import DATASOURCE_UID
from dashboards.push import FOLDER_UID, PushError, push

log = logging.getLogger(__name__)
TOKEN_ENV = "GRAFANA_TOKEN"
PASSWORD_ENV = "LOAXA_INFLUX_PASSWORD"


def _generate(args: argparse.Namespace) -> int:
    try:
        inventory = load_inventory(args.inventory)
    except InventoryError as err:
        log.error("%s", err)
        return 2
    out = Path(args.out)
    if args.check:
        stale = stale_files(inventory, out)
        if stale:
            log.error("out of date in %s: %s (run loaxa dashboards generate)", out, stale)
            return 1
        log.info("dashboards in %s are up to date", out)
        return 0
    for path in write_all(inventory, out):
        log.info("wrote %s", path)
    return 0


def read_token(args: argparse.Namespace) -> str | None:
    """--token-file, else --token (visible in `ps`), else GRAFANA_TOKEN."""
    if args.token_file:
        return Path(args.token_file).read_text(encoding="utf-8").strip() or None
    return args.token or os.environ.get(TOKEN_ENV)


def _push(args: argparse.Namespace) -> int:
    try:
        token = read_token(args)
    except OSError as err:
        log.error("cannot read token file %s: %s", args.token_file, err.strerror)
        return 2
    if not token:
        log.error("no Grafana token: give --token-file FILE or set %s", TOKEN_ENV)
        return 2
    try:
        dashboards = load_dashboards(Path(args.dir))
        uids = push(
            args.url,
            token,
            dashboards,
            folder_uid=args.folder_uid,
            datasource_uid=args.datasource_uid,
        )
    except (PushError, FileNotFoundError) as err:
        log.error("%s", err)
        return 1
    print(f"pushed {len(uids)} dashboards: {', '.join(uids)}")
    return 0


def _feed(args: argparse.Namespace) -> int:
    try:
        inventory = load_inventory(args.inventory)
    except InventoryError as err:
        log.error("%s", err)
        return 2
    password = os.environ.get(PASSWORD_ENV)
    reader = InfluxReader(args.influx_url, args.db, user=args.user, password=password)
    writer = make_writer(
        InfluxConfig(url=args.influx_url, db=args.db, user=args.user, password=password)
    )

    def job():
        return run_once(inventory, reader, writer.write, time.time_ns() // 1_000_000)

    try:
        if args.every is None:
            result = job()
            print(f"wrote {result.lines} lines ({result.stations_with_data} stations with data)")
            return 0
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        run_every(args.every, job, stop)
        return 0
    except (ExportError, StorageError) as err:
        log.error("feed failed: %s", err)
        return 1
    finally:
        writer.close()


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("dashboards", help="Grafana dashboards: generate, push")
    sub = parser.add_subparsers(dest="dashboards_command", metavar="ACTION", required=True)

    gen = sub.add_parser("generate", help="write the dashboard JSON from the inventory")
    gen.add_argument("--inventory", default=str(EXAMPLE_INVENTORY), help="inventory TOML")
    gen.add_argument("--out", default=str(JSON_DIR), help=f"output directory ({JSON_DIR})")
    gen.add_argument("--check", action="store_true", help="exit 1 if the files are out of date")
    gen.set_defaults(func=_generate)

    up = sub.add_parser("push", help="upload the dashboards to Grafana (HTTP API)")
    up.add_argument("--url", required=True, help="Grafana base URL, e.g. http://grafana:3000")
    up.add_argument("--token-file", help="file holding a Grafana service account token")
    up.add_argument("--token", help=f"token (prefer --token-file or ${TOKEN_ENV})")
    up.add_argument("--dir", default=str(JSON_DIR), help="dashboard JSON directory")
    up.add_argument("--folder-uid", default=FOLDER_UID, help="Grafana folder uid")
    up.add_argument(
        "--datasource-uid",
        default=DATASOURCE_UID,
        help="uid of the InfluxDB (InfluxQL) datasource in that Grafana",
    )
    up.set_defaults(func=_push)

    feed = sub.add_parser("feed", help="write station_info, availability, compliance points")
    feed.add_argument("--inventory", required=True, help="inventory TOML")
    feed.add_argument("--influx-url", required=True, help="InfluxDB base URL (v1 API)")
    feed.add_argument("--db", default="loaxa", help="database (default loaxa)")
    feed.add_argument("--user", help=f"InfluxDB user (password from ${PASSWORD_ENV})")
    feed.add_argument("--every", type=float, help="repeat every SECONDS until SIGTERM")
    feed.set_defaults(func=_feed)
