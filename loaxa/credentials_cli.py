"""``loaxa credentials generate``: broker accounts, password file and ACL from the inventory.

    loaxa credentials generate --inventory /etc/loaxa/inventory.toml --out /root/loaxa-creds \\
        --broker-host mqtt.caobang.example.vn [--rotate cb-01267]

What it writes is described in loaxa/credentials.py; how to install it in deploy/README.md.
It prints user names and file paths only, never a password.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from collector.inventory import InventoryError, load_inventory
from loaxa.credentials import BrokerAddress, CredentialsError, generate
from loaxa.credentials_certs import PASSPHRASE_ENV, CertAuthority


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("credentials", help="broker accounts from the inventory")
    sub = parser.add_subparsers(dest="credentials_command", metavar="ACTION", required=True)
    gen = sub.add_parser(
        "generate",
        help="write the Mosquitto password file, ACL and per-station agent credentials",
    )
    gen.add_argument(
        "--inventory",
        action="append",
        required=True,
        metavar="FILE",
        help="inventory TOML (repeat for several provinces on one broker)",
    )
    gen.add_argument("--out", required=True, metavar="DIR", help="output directory (mode 0700)")
    gen.add_argument("--broker-host", required=True, help="broker name the clients connect to")
    gen.add_argument("--broker-port", type=int, default=8883, help="TLS port (default 8883)")
    gen.add_argument(
        "--ca-file",
        default="/etc/loaxa/ca.pem",
        help="path of the CA certificate ON THE CLIENTS (default /etc/loaxa/ca.pem)",
    )
    gen.add_argument(
        "--collector",
        action="append",
        metavar="USER",
        help="collector account (repeat for several; default loaxa-collector)",
    )
    gen.add_argument(
        "--collector-partitions",
        type=int,
        default=0,
        metavar="P",
        help="also <collector>-p0 .. -p<P-1>: one account per partition of a collector group "
        "with account_per_partition (collector/GROUP.md)",
    )
    gen.add_argument(
        "--operator",
        action="append",
        metavar="USER",
        help="operator account for loaxa ack (repeat; default loaxa-ops)",
    )
    gen.add_argument(
        "--ca-cert",
        metavar="PEM",
        help="certificate mode: CA certificate that signs station client certificates",
    )
    gen.add_argument(
        "--ca-key",
        metavar="PEM",
        help=f"certificate mode: the CA's key (passphrase from ${PASSPHRASE_ENV} if set)",
    )
    gen.add_argument("--cert-port", type=int, default=8884, help="certificate listener port")
    gen.add_argument("--cert-days", type=int, default=825, help="client certificate lifetime")
    gen.add_argument(
        "--client-dir",
        default="/etc/loaxa",
        help="where stations keep their key and certificate (default /etc/loaxa)",
    )
    gen.add_argument(
        "--rotate",
        action="append",
        default=[],
        metavar="USER",
        help="make a new password for this account (repeat); others keep theirs",
    )
    gen.set_defaults(func=_generate)


def _collectors(names: list[str], partitions: int) -> list[str]:
    """The collector accounts, each followed by its partitions' ``<name>-p<k>``."""
    return [n for name in names for n in (name, *(f"{name}-p{k}" for k in range(partitions)))]


def _generate(args: argparse.Namespace) -> int:
    if (args.ca_cert is None) != (args.ca_key is None):
        print("--ca-cert and --ca-key go together (certificate mode)", file=sys.stderr)
        return 2
    authority = None
    if args.ca_cert:
        authority = CertAuthority(
            Path(args.ca_cert), Path(args.ca_key), args.cert_days, args.client_dir
        )
    try:
        inventories = [load_inventory(path) for path in args.inventory]
        result = generate(
            inventories,
            args.out,
            BrokerAddress(args.broker_host, args.broker_port, args.ca_file, args.cert_port),
            collectors=_collectors(
                args.collector or ["loaxa-collector"], args.collector_partitions
            ),
            operators=args.operator or ["loaxa-ops"],
            rotate=args.rotate,
            authority=authority,
        )
    except (InventoryError, CredentialsError) as err:
        print(f"credentials not generated: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"credentials not generated: {err.strerror}: {err.filename}", file=sys.stderr)
        return 1
    print(f"{len(result.accounts)} accounts written to {args.out}")
    for label, names in (
        ("new password", result.created),
        ("rotated", result.rotated),
        ("certificate issued", result.issued),
        ("secret left over, access revoked", result.revoked),
    ):
        if names:
            print(f"  {label}: {', '.join(names)}")
    for station, why in result.skipped.items():
        print(f"  no account for {station}: {why}")
    return 0
