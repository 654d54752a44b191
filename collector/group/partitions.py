"""Partitions of a collector group, version 1 (GROUP.md): which communes each owns, and the
collector configuration and inventory a partition runs with. Pure, except reading the
inventory file.

- A commune belongs to partition ``crc32(code) % P`` (zlib's CRC-32 of the 5-digit code,
  ASCII): stable when communes are added or removed, whatever the inventory's order.
- Partition k runs as an ordinary ``Collector`` with: MQTT client id ``<client_id>-p<k>`` (its
  persistent broker session, and the QoS 1 messages queued in it, belong to the partition, not to
  a process), topic filters ``loaxa/v1/<province>/<commune>/+/+`` for its communes, spool,
  dead-letter file and state store suffixed ``-p<k>``, an inventory of its communes only (its
  health engine judges only its stations), exports off (a partial inventory would give a
  partial report: run ``loaxa export`` on the whole inventory instead).
"""

from __future__ import annotations

import math
import tomllib
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from collector.config import CollectorConfig
from collector.ingest.config import MqttConfig
from collector.inventory import Inventory, InventoryError, parse_inventory
from loaxa.secret_sources import read_secret_file
from loaxa.topics import commune_subscription

PARTITIONING_VERSION = 1


def partition_of(commune: str, partitions: int) -> int:
    return zlib.crc32(commune.encode("ascii")) % partitions


def assign(communes: Iterable[str], partitions: int) -> dict[int, list[str]]:
    """Every partition 0..P-1 with its communes, sorted (a partition may get none)."""
    out: dict[int, list[str]] = {k: [] for k in range(partitions)}
    for code in sorted(communes):
        out[partition_of(code, partitions)].append(code)
    return out


def suffixed(path: Path, k: int) -> Path:
    """``state.sqlite`` -> ``state-p3.sqlite``: partition k's own file beside the configured one."""
    return path.with_name(f"{path.stem}-p{k}{path.suffix}")


def partition_inventory(path: Path, communes: Iterable[str]) -> Inventory:
    """The inventory restricted to ``communes``: their communes, stations and maintenance."""
    keep = set(communes)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise InventoryError(f"cannot read inventory {path}: {err}") from err
    stations = [s for s in data.get("stations", []) if s.get("commune") in keep]
    ids = {s.get("id") for s in stations}
    data["communes"] = [c for c in data.get("communes", []) if c.get("code") in keep]
    data["stations"] = stations
    data["maintenance"] = [
        m
        for m in data.get("maintenance", [])
        if m.get("station") in ids or m.get("commune") in keep
    ]
    try:
        return parse_inventory(data)
    except InventoryError as err:
        raise InventoryError(f"{path}: {err}") from err


def partition_config(
    config: CollectorConfig, k: int, province: str, communes: list[str], http_base_port: int
) -> CollectorConfig:
    """Partition k's collector configuration, derived from the group's one config."""
    if not communes:
        raise ValueError(f"partition {k} has no commune: nothing to run")
    own_account = config.group is not None and config.group.account_per_partition
    mqtt = config.mqtt.model_copy(
        update={
            "client_id": f"{config.mqtt.client_id}-p{k}",
            "topics": [commune_subscription(province, c) for c in communes],
            "shared_group": None,  # a shared subscription would split a station's messages
        }
        | (partition_account(config.mqtt, k) if own_account else {})
    )
    spool = config.spool.model_copy(
        update={
            "path": suffixed(config.spool.path, k),
            "dead_letter_path": suffixed(config.spool.dead_letter_path, k),
        }
    )
    daemon = config.daemon.model_copy(update={"state_db": suffixed(config.daemon.state_db, k)})
    http = config.http.model_copy(
        update={"enabled": http_base_port > 0, "port": http_base_port + k if http_base_port else 0}
    )
    export = config.export.model_copy(update={"monthly": False, "yearly": False})
    return config.model_copy(
        update={
            "mqtt": mqtt,
            "spool": spool,
            "daemon": daemon,
            "http": http,
            "export": export,
            "group": None,
        }
    )


def partition_account(mqtt: MqttConfig, k: int) -> dict[str, str]:
    """Partition k's own broker accounts: ``<username>-p<k>``, its password in
    ``<password_file>-p<k>`` (``loaxa-collector.secret`` -> ``loaxa-collector-p3.secret``), and
    likewise ``ops_username`` when set.
    ValueError naming the key if the group config lacks what this needs."""
    if mqtt.username is None or mqtt.password_file is None:
        raise ValueError(
            "group.account_per_partition needs mqtt.username and mqtt.password_file "
            "(partition k logs in as <username>-p<k> with the password in <file>-p<k>)"
        )
    file = suffixed(Path(mqtt.password_file), k)
    account = {
        "username": f"{mqtt.username}-p{k}",
        "password_file": str(file),
        "password": read_secret_file(file),
    }
    if mqtt.ops_username is not None:  # the alert-ack session is a session of its own too
        if mqtt.ops_password_file is None:
            raise ValueError("group.account_per_partition with mqtt.ops_username needs "
                             "mqtt.ops_password_file (read as <file>-p<k>)")  # fmt: skip
        ops_file = suffixed(Path(mqtt.ops_password_file), k)
        account |= {
            "ops_username": f"{mqtt.ops_username}-p{k}",
            "ops_password_file": str(ops_file),
            "ops_password": read_secret_file(ops_file),
        }
    return account


def fair_share(partitions: int, members: int) -> int:
    """Most partitions one member should hold: ceil(P / live members)."""
    return math.ceil(partitions / max(1, members))


@dataclass(frozen=True)
class Plan:
    release: tuple[int, ...]  # held partitions to hand back (graceful stop, then unlock)
    want: int  # free partitions to try to take


def plan(held: Iterable[int], share: int) -> Plan:
    """What a member does this poll: above its share it releases the highest partitions it holds
    (the newcomers take them); below, it tries to take as many free ones as it lacks."""
    mine = sorted(held)
    if len(mine) > share:
        return Plan(release=tuple(mine[share:]), want=0)
    return Plan(release=(), want=share - len(mine))


def acquire_order(partitions: Iterable[int], member_seed: int) -> list[int]:
    """Free partitions in the order a member tries them: rotated by a per-member seed so that
    members starting together do not all race for partition 0 first."""
    ks = sorted(partitions)
    if not ks:
        return []
    r = member_seed % len(ks)
    return ks[r:] + ks[:r]
