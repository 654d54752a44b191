"""``[group]`` of the collector TOML: run this collector as one member of a group (GROUP.md).

Kept free of imports from ``collector.config`` (which composes it) to avoid a cycle.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class GroupConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    dir: Path = Field(
        description="folder shared by the members: partition and member lock files, each "
        "partition's spool and state store (one host, or a filesystem with working flock)"
    )
    partitions: Annotated[int, Field(ge=1, le=64)] = Field(
        8,
        description="fixed number of partitions; communes are hashed into them (never change "
        "it on a running group: a commune would move to another partition's state)",
    )
    poll_s: Annotated[float, Field(gt=0, le=60)] = Field(
        1.0,
        description="how often a member checks the others and takes free partitions: the "
        "first term of the failover time",
    )
    takeover_cooldown_s: Annotated[float, Field(ge=0)] = Field(
        60.0,
        description="after the broker gave a partition's session to another client, do "
        "not take that partition again for this long (never fight over a session)",
    )
    account_per_partition: bool = Field(
        False,
        description="partition k logs in as <mqtt.username>-p<k> with the password in "
        "<mqtt.password_file>-p<k> (`loaxa credentials generate --collector-partitions P`): "
        "needed when the broker takes the client id from the user name "
        "(use_username_as_clientid, deploy/mosquitto), where one account holds one session",
    )
    http_base_port: Annotated[int, Field(ge=0, le=65535)] = Field(
        0,
        description="partition k serves /healthz and /metrics on this port + k (0: off); "
        "the port follows the partition from member to member",
    )
