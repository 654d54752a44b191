"""MQTT topic names: the one place they are spelled (docs/PAYLOADS.md documents them).

Topic scheme, version 1::

    loaxa/v1/<province>/<commune>/<station>/<kind>

``province`` is a slug (``cao-bang``), ``commune`` the 5-digit GSO code of the commune in force
(``01273``), ``station`` the station id from the inventory (``cb-01267``). No segment may contain
``/``, ``+``, ``#`` or be empty.
"""

from __future__ import annotations

import re
from enum import StrEnum

ROOT = "loaxa"
VERSION = "v1"
_SEGMENT = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class Kind(StrEnum):
    STATUS = "status"  # retained online/offline (Last Will), carries the session counter
    TELEMETRY = "telemetry"  # periodic readings
    EVENT = "event"  # controller/agent events, QoS 1, sent at once
    BROADCAST = "broadcast"  # broadcast log: program start/stop with source and priority


class TopicError(ValueError):
    """A topic that does not follow the v1 scheme."""


def check_segment(name: str, value: str) -> str:
    if not _SEGMENT.match(value):
        raise TopicError(f"{name} {value!r} is not a valid topic segment ([A-Za-z0-9_.-], 1-64)")
    return value


def station_topic(province: str, commune: str, station: str, kind: Kind | str) -> str:
    for name, value in (("province", province), ("commune", commune), ("station", station)):
        check_segment(name, value)
    return f"{ROOT}/{VERSION}/{province}/{commune}/{station}/{Kind(kind).value}"


def subscription(province: str = "+") -> str:
    """Filter matching every station topic of a province (or of all provinces)."""
    return f"{ROOT}/{VERSION}/{province}/+/+/+"


def commune_subscription(province: str, commune: str) -> str:
    """Filter matching every station topic of one commune (a collector group partitions by it)."""
    for name, value in (("province", province), ("commune", commune)):
        check_segment(name, value)
    return f"{ROOT}/{VERSION}/{province}/{commune}/+/+"


def parse_station_topic(topic: str) -> tuple[str, str, str, Kind]:
    """Split a v1 station topic into (province, commune, station, kind); TopicError if not one."""
    parts = topic.split("/")
    if len(parts) != 6 or parts[0] != ROOT:
        raise TopicError(f"not a loaxa station topic: {topic!r}")
    if parts[1] != VERSION:
        raise TopicError(f"unsupported topic version {parts[1]!r} in {topic!r}")
    try:
        kind = Kind(parts[5])
    except ValueError as err:
        raise TopicError(f"unknown message kind {parts[5]!r} in {topic!r}") from err
    for name, value in zip(("province", "commune", "station"), parts[2:5], strict=True):
        check_segment(name, value)
    return parts[2], parts[3], parts[4], kind


# --- Collector-side operations topics (alerts, acknowledgements), v1 -------------------------
# Seven levels, so the six-level station filter ``loaxa/v1/<province>/+/+/+`` never matches them:
#   loaxa/v1/<province>/_ops/alert/<commune>/<station>   one JSON notification (alerts feed)
#   loaxa/v1/<province>/_ops/ack/<commune>/<code>        {"by": "..."} acknowledges alert <code>
# Alerts about several stations use commune "_group" (station: the recipient id), an upstream
# failure commune "_upstream" (station: the upstream id).
OPS = "_ops"


def alert_topic(province: str, commune: str, station: str) -> str:
    for name, value in (("province", province), ("commune", commune), ("station", station)):
        check_segment(name, value)
    return f"{ROOT}/{VERSION}/{province}/{OPS}/alert/{commune}/{station}"


def ack_topic(province: str, commune: str, code: str) -> str:
    for name, value in (("province", province), ("commune", commune), ("code", code)):
        check_segment(name, value)
    return f"{ROOT}/{VERSION}/{province}/{OPS}/ack/{commune}/{code}"


def ack_subscription(province: str = "+") -> str:
    return f"{ROOT}/{VERSION}/{province}/{OPS}/ack/+/+"


def alert_subscription(province: str = "+") -> str:
    return f"{ROOT}/{VERSION}/{province}/{OPS}/alert/+/+"


def parse_ack_topic(topic: str) -> tuple[str, str, str]:
    """(province, commune, code) of an acknowledgement topic; TopicError if not one."""
    parts = topic.split("/")
    if len(parts) != 7 or parts[:2] != [ROOT, VERSION] or parts[3:5] != [OPS, "ack"]:
        raise TopicError(f"not a loaxa acknowledgement topic: {topic!r}")
    for name, value in zip(
        ("province", "commune", "code"), (parts[2], parts[5], parts[6]), strict=True
    ):
        check_segment(name, value)
    return parts[2], parts[5], parts[6]


# --- Commands to one station (reserved, v1), read only by that station (deploy/mosquitto ACL) ---
#   loaxa/v1/<province>/<commune>/<station>/cmd/<name>
# Exactly seven levels (a single-level filter, not #, which would also match .../<station>/cmd),
# so the six-level station filter never matches them.
CMD = "cmd"


def command_subscription(province: str, commune: str, station: str) -> str:
    """Filter of every command addressed to one station."""
    for name, value in (("province", province), ("commune", commune), ("station", station)):
        check_segment(name, value)
    return f"{ROOT}/{VERSION}/{province}/{commune}/{station}/{CMD}/+"


def command_topic(province: str, commune: str, station: str, name: str) -> str:
    check_segment("command", name)
    return command_subscription(province, commune, station)[:-1] + name
