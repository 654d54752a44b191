"""``loaxa agent``: run the station agent, or check its configuration file.

loaxa agent run --config /etc/loaxa/agent.toml     (also: loaxa agent --config FILE)
loaxa agent check-config /etc/loaxa/agent.toml
"""

from __future__ import annotations

import argparse
import logging
import sys

from agent.config import ConfigError, load_config

log = logging.getLogger("agent")
DEFAULT_CONFIG = "/etc/loaxa/agent.toml"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    agent = subparsers.add_parser(
        "agent",
        help="run the station agent (controller -> MQTT)",
        description="The station agent: polls the controller, measures audio, and publishes "
        "telemetry, events and the broadcast log over MQTT, queueing on disk while offline.",
    )
    agent.add_argument(
        "--config", metavar="FILE", help=f"agent configuration (TOML); default {DEFAULT_CONFIG}"
    )
    agent.set_defaults(func=_run)
    sub = agent.add_subparsers(dest="agent_command", metavar="ACTION")
    run = sub.add_parser("run", help="run the agent until SIGTERM/SIGINT")
    run.add_argument(
        "--config", metavar="FILE", default=argparse.SUPPRESS, help="agent configuration (TOML)"
    )
    run.set_defaults(func=_run)
    check = sub.add_parser(
        "check-config",
        help="validate a configuration file and exit (0: valid, 2: invalid)",
        description="Validate FILE without touching the network or the serial port; every "
        "problem is printed as 'key.path: what is wrong'.",
    )
    check.add_argument("file", metavar="FILE", help="agent configuration (TOML)")
    check.set_defaults(func=_check_config)


def _check_config(args: argparse.Namespace) -> int:
    try:
        cfg = load_config(args.file)
    except ConfigError as err:
        print(f"{err.path}: invalid configuration", file=sys.stderr)
        for problem in err.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    tls = "TLS" if cfg.mqtt.tls else "plain TCP"
    print(
        f"{args.file}: OK - station {cfg.station.id} ({cfg.station.province}/"
        f"{cfg.station.commune}), broker {cfg.mqtt.address} MQTT {cfg.mqtt.protocol} {tls}, "
        f"controller {cfg.controller.url}, telemetry every {cfg.telemetry.interval_s:g} s, "
        f"queue {cfg.queue_path} (max {cfg.queue.max_bytes / 2**20:.1f} MiB)"
    )
    return 0


def _run(args: argparse.Namespace) -> int:
    path = args.config or DEFAULT_CONFIG
    try:
        cfg = load_config(path)
    except ConfigError as err:
        log.error("%s", err)
        return 2
    from agent.queue import QueueError
    from agent.service import run  # heavy imports only when running

    try:
        return run(cfg)
    except (QueueError, OSError) as err:  # e.g. state dir not writable, queue file damaged
        log.error("agent cannot start: %s", err)
        return 1
