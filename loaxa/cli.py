"""The ``loaxa`` command: one entry point, a subcommand per part of the system."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from loaxa import __version__

# Each module exposes add_parser(subparsers) and sets ``func`` on its parser(s).
_SUBCOMMAND_MODULES = (
    "agent.cli",
    "collector.cli",
    "collector.export.cli",
    "dashboards.cli",
    "loaxa.sim.cli",
    "loaxa.credentials_cli",
    "loaxa.demo.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="loaxa",
        description="loaxa keeps the commune loudspeaker radio network on the air and proves it.",
    )
    parser.add_argument("--version", action="version", version=f"loaxa {__version__}")
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="log verbosity (default INFO)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name != name:
                raise
            continue
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
