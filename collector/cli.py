"""``loaxa collector``, ``loaxa status``, ``loaxa ack``: the provincial collector's commands.

    loaxa collector --config /etc/loaxa/collector.toml           run until SIGTERM/SIGINT
    loaxa collector --config FILE --check                        validate config + inventory
    (a config with [group] runs the process as one member of a collector group: GROUP.md)
    loaxa status --config FILE                                   station table from the state store
    loaxa ack 123 --config FILE --by "Nông Văn Minh"             acknowledge an alert
    loaxa ack 123 --ops-config operators/loaxa-ops.toml --province cao-bang --by NAME
                                                                 ... on the production broker

``ack`` publishes the acknowledgement to the broker (collector.alerts.ack): the running daemon
applies it, and a daemon that is restarting gets it from its persistent session.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from datetime import datetime

from collector.config import CollectorConfig, ConfigError, load_config

log = logging.getLogger("collector")
DEFAULT_CONFIG = "/etc/loaxa/collector.toml"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    run = subparsers.add_parser(
        "collector",
        help="run the provincial collector (MQTT/serial -> InfluxDB, health, alerts)",
        description="Validates every agent message, stores it in InfluxDB through a durable "
        "spool, judges each station's health and alerts technicians.",
    )
    _config_arg(run)
    run.add_argument("--check", action="store_true", help="validate config and inventory, exit")
    run.set_defaults(func=_run)

    status = subparsers.add_parser(
        "status", help="table of stations: commune, state, since, technician"
    )
    _config_arg(status)
    status.add_argument(
        "--json", action="store_true", help="the whole fleet view (incidents, compliance) as JSON"
    )
    status.set_defaults(func=_status)

    ack = subparsers.add_parser("ack", help="acknowledge an alert (its code or incident id)")
    ack.add_argument("incident", metavar="INCIDENT", help="3-digit code from the SMS, or id")
    _config_arg(ack)
    ack.add_argument("--by", required=True, metavar="NAME", help="who takes it on")
    ack.add_argument(
        "--ops-config",
        metavar="FILE",
        help="operator account: operators/<user>.toml from `loaxa credentials generate` "
        "(password also from $LOAXA_OPS_PASSWORD); required when the broker has accounts",
    )
    ack.add_argument("--province", metavar="SLUG", help="default: from --config's inventory")
    ack.set_defaults(func=_ack)


def _config_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", metavar="FILE", default=DEFAULT_CONFIG, help=f"default {DEFAULT_CONFIG}"
    )


def _load(args: argparse.Namespace) -> CollectorConfig | None:
    try:
        return load_config(args.config)
    except ConfigError as err:
        print(err, file=sys.stderr)
        return None


def _run(args: argparse.Namespace) -> int:
    config = _load(args)
    if config is None:
        return 2
    from collector.inventory import InventoryError, load_inventory

    try:
        inventory = load_inventory(config.inventory)
    except (InventoryError, OSError) as err:
        print(f"{config.inventory}: {err}", file=sys.stderr)
        return 2
    if args.check:
        print(
            f"{args.config}: OK - {len(inventory.stations)} stations of {inventory.province.name},"
            f" broker {config.mqtt.host}:{config.mqtt.port}, influx {config.influx.url},"
            f" {len(config.serial_gateways)} serial gateway(s)"
        )
        if config.group is not None:
            from collector.group.partitions import assign

            sizes = sorted(map(len, assign(inventory.communes, config.group.partitions).values()))
            print(
                f"group member: {config.group.partitions} partitions of {sizes[0]}-{sizes[-1]}"
                f" communes, locks in {config.group.dir}"
            )
        return 0
    from collector.daemon import Collector  # heavy imports only when running
    from collector.health.store import StoreError
    from collector.storage import StorageError

    if config.group is not None:  # one member of a collector group (collector/GROUP.md)
        from collector.group.locks import GroupLockError
        from collector.group.member import GroupConfigError, GroupMember

        try:
            return GroupMember(config).run()
        except (GroupConfigError, GroupLockError) as err:
            print(f"collector group member cannot start: {err}", file=sys.stderr)
            return 1
    try:
        collector = Collector(config)
    except (StorageError, StoreError, OSError) as err:
        print(f"collector cannot start: {err}", file=sys.stderr)
        return 1
    return collector.run()


def _status(args: argparse.Namespace) -> int:
    config = _load(args)
    if config is None:
        return 2
    from collector.health.engine import HealthEngine
    from collector.health.fleet_view import fleet_view
    from collector.health.snapshots import SnapshotError
    from collector.health.store import HealthStore, StoreError
    from collector.inventory import load_inventory

    inventory = load_inventory(config.inventory)
    if not config.daemon.state_db.exists():
        print(f"{config.daemon.state_db}: no state yet (has the collector run?)", file=sys.stderr)
        return 1
    engine = HealthEngine(inventory, config.health)
    try:
        store = HealthStore(config.daemon.state_db)
        snap = store.load()
        store.close()
        if snap is not None:
            engine.restore(snap)
    except (StoreError, SnapshotError) as err:
        print(err, file=sys.stderr)
        return 1
    view = fleet_view(engine, int(datetime.now().timestamp() * 1000))
    if args.json:
        print(json.dumps(_view_json(view), ensure_ascii=False, indent=1))
        return 0
    tz = inventory.province.tz
    rows = [("COMMUNE", "STATION", "STATE", "SINCE", "TECHNICIAN")]
    for sid, station in sorted(inventory.stations.items(), key=lambda kv: (kv[1].commune, kv[0])):
        sv = view.stations[sid]
        since = sv.since_ms
        when = datetime.fromtimestamp(since / 1000, tz).strftime("%Y-%m-%d %H:%M") if since else "-"
        techs = ", ".join(t.name for t in inventory.technicians_for(sid)) or "-"
        commune = (
            inventory.communes[station.commune].name
            if station.commune in inventory.communes
            else station.commune
        )
        state = sv.state.value + (f" ({sv.cause.value})" if sv.cause else "")
        rows.append((commune, sid, state, when, techs))
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
    return 0


def _view_json(view) -> dict[str, object]:
    """``loaxa status --json``: the FleetView as plain JSON (times in ms since the epoch)."""
    c = view.compliance
    return {
        "ts_ms": view.ts_ms,
        "stations": {
            sid: {
                "commune": s.commune,
                "state": s.state.value,
                "since_ms": s.since_ms,
                "cause": s.cause.value if s.cause else None,
                "incident": s.incident_id,
            }
            for sid, s in view.stations.items()
        },
        "open_incidents": [
            {
                "id": i.id,
                "station": i.station,
                "state": i.state.value,
                "cause": i.cause.value,
                "opened_ms": i.opened_ms,
                "maintenance": i.maintenance,
            }
            for i in view.open_incidents
        ],
        "compliance": {
            "percent": c.percent,
            "goal_percent": c.goal_percent,
            "below_goal": {
                b.code: {k: v.value for k, v in b.failing.items()} for b in c.below_goal
            },
            "in_maintenance": c.in_maintenance,
        },
        "upstreams_down": view.upstreams_down,
    }


def _ack(args: argparse.Namespace) -> int:
    from collector.alerts.ack import publish_ack, send_ack
    from collector.alerts.errors import ChannelError
    from collector.alerts.ops_config import OpsConfigError, load_ops_config
    from collector.inventory import InventoryError, load_inventory

    config = None
    if args.province is None or args.ops_config is None:
        config = _load(args)
        if config is None:
            return 2
    try:
        province = args.province or load_inventory(config.inventory).province.slug
        if args.ops_config is not None:
            send_ack(load_ops_config(args.ops_config), province, args.incident, args.by)
        elif config.mqtt.username:
            print(
                "ack: give the operator account with --ops-config operators/<user>.toml; the "
                f"collector's account ({config.mqtt.username}) would end the collector's own "
                "connection (the broker uses the user name as client id)",
                file=sys.stderr,
            )
            return 2
        else:  # a local broker without accounts (development, the demo)
            publish_ack(
                config.mqtt.host,
                config.mqtt.port,
                province,
                args.incident,
                args.by,
                tls_ca_file=config.mqtt.tls_ca_file,
            )
    except (OpsConfigError, InventoryError) as err:
        print(err, file=sys.stderr)
        return 2
    except (ChannelError, ValueError) as err:
        print(f"ack failed: {err}", file=sys.stderr)
        return 1
    print(f"acknowledgement of {args.incident} by {args.by} sent")
    return 0
