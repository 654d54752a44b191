"""Broker accounts and their topic grants, rendered as a Mosquitto 2.0 ``acl_file``.

Grants, ACL format version 1 (topics from loaxa/topics.py):

=========  ==========================================================================
station    write  loaxa/v1/<province>/<commune>/<station>/<kind>   (each kind: status,
                  telemetry, event, broadcast)
           read   loaxa/v1/<province>/<commune>/<station>/cmd/+    (its own commands)
collector  read   loaxa/v1/<province>/+/+/+                        (station messages)
           write  loaxa/v1/<province>/_ops/alert/+/+               (alerts feed)
           read   loaxa/v1/<province>/_ops/ack/+/+                 (acknowledgements)
operator   write  loaxa/v1/<province>/_ops/ack/+/+                 (``loaxa ack``)
           write  loaxa/v1/<province>/+/+/cmd/+                    (commands to stations)
           read   loaxa/v1/<province>/_ops/alert/+/+               (alerts feed)
=========  ==========================================================================

A station may not even read its own telemetry, and no one reads ``$SYS``. The broker runs
with ``use_username_as_clientid`` (deploy/mosquitto/mosquitto.conf), so a user name is also
the client id and one account cannot take over another's session.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from loaxa.topics import (
    CMD,
    ROOT,
    VERSION,
    Kind,
    ack_subscription,
    alert_subscription,
    check_segment,
    command_subscription,
    station_topic,
    subscription,
)

ACL_FORMAT_VERSION = 1


class Role(StrEnum):
    STATION = "station"
    COLLECTOR = "collector"
    OPERATOR = "operator"


@dataclass(frozen=True)
class Grant:
    access: str  # "read" or "write", as in the Mosquitto acl_file
    topic: str  # a topic filter; + and # allowed


@dataclass(frozen=True)
class Account:
    """One broker user: its name (also its client id), role and grants."""

    username: str
    role: Role
    grants: tuple[Grant, ...]
    note: str  # shown as a comment in the ACL file: what the account is for


def station_account(province: str, commune: str, station: str) -> Account:
    writes = [Grant("write", station_topic(province, commune, station, k)) for k in Kind]
    reads = [Grant("read", command_subscription(province, commune, station))]
    return Account(station, Role.STATION, (*writes, *reads), f"{province}, commune {commune}")


def collector_account(username: str, provinces: Iterable[str]) -> Account:
    grants: list[Grant] = []
    for p in provinces:
        grants += [
            Grant("read", subscription(p)),
            Grant("write", alert_subscription(p)),
            Grant("read", ack_subscription(p)),
        ]
    return Account(
        check_segment("user", username),
        Role.COLLECTOR,
        tuple(grants),
        "reads stations, writes alerts",
    )


def operator_account(username: str, provinces: Iterable[str]) -> Account:
    grants: list[Grant] = []
    for p in provinces:
        grants += [
            Grant("write", ack_subscription(p)),
            Grant("write", f"{ROOT}/{VERSION}/{check_segment('province', p)}/+/+/{CMD}/+"),
            Grant("read", alert_subscription(p)),
        ]
    return Account(
        check_segment("user", username), Role.OPERATOR, tuple(grants), "acks and commands"
    )


def render_acl(accounts: Iterable[Account], header: str = "") -> str:
    """The acl_file text. Grants before any ``user`` line would apply to anonymous clients,
    so every grant sits under its user."""
    lines = [
        f"# loaxa broker ACL, format version {ACL_FORMAT_VERSION}: generated, do not edit.",
        "# Regenerate with `loaxa credentials generate` (see deploy/README.md).",
    ]
    if header:
        lines.append(f"# {header}")
    seen: set[str] = set()
    for account in accounts:
        if account.username in seen:
            raise ValueError(f"user {account.username!r} appears twice")
        seen.add(account.username)
        lines += ["", f"# {account.role.value}: {account.note}", f"user {account.username}"]
        lines += [f"topic {g.access} {g.topic}" for g in account.grants]
    return "\n".join(lines) + "\n"
