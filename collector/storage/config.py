"""StorageConfig: the ``[influx]`` and ``[spool]`` sections of the collector's TOML file."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from loaxa.secret_sources import secret_sources


class InfluxApi(StrEnum):
    V1 = "v1"  # POST /write?db=&precision=ms (InfluxDB 1.x, 2.x/3.x v1-compatibility API)
    V2 = "v2"  # POST /api/v2/write via influxdb-client (InfluxDB 1.8+, 2.x, 3.x)


class SpoolFullPolicy(StrEnum):
    REJECT = "reject"  # append raises SpoolFullError: ingest does not ACK, the broker keeps it
    DROP_OLDEST = "drop_oldest"  # delete the oldest rows (counted, alarmed): bounded disk first


class InfluxConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    api: InfluxApi = Field(InfluxApi.V1, description="write API: v1 or v2")
    url: str = Field("http://127.0.0.1:8086", description="server base URL")
    db: str | None = Field("loaxa", description="v1: database name")
    rp: str | None = Field(None, description="v1: retention policy (default: the db's default)")
    user: str | None = Field(None, description="v1: user name (HTTP basic auth)")
    password: str | None = Field(None, description="v1: password")
    password_file: str | None = Field(
        None, description="v1: file holding the password (else env LOAXA_INFLUX_PASSWORD)"
    )
    create_database: bool = Field(
        False, description="v1: CREATE DATABASE at start and when missing (needs admin)"
    )
    bucket: str | None = Field(None, description="v2: bucket (1.8+: 'db/rp')")
    org: str | None = Field(None, description="v2: organisation (1.8+: '-')")
    token: str | None = Field(None, description="v2: API token (1.8+: 'user:password')")
    token_file: str | None = Field(
        None, description="v2: file holding the token (else env LOAXA_INFLUX_TOKEN)"
    )
    _secrets = model_validator(mode="before")(
        secret_sources({"password": "LOAXA_INFLUX_PASSWORD", "token": "LOAXA_INFLUX_TOKEN"})
    )
    timeout_s: Annotated[float, Field(gt=0)] = Field(10.0, description="HTTP timeout per write")
    batch_size: Annotated[int, Field(ge=1, le=100_000)] = Field(
        5000, description="points per write request"
    )
    flush_interval_ms: Annotated[int, Field(ge=10)] = Field(
        1000, description="write a partial batch after this long"
    )
    retry_initial_ms: Annotated[int, Field(ge=1)] = Field(
        500, description="first retry delay after a retryable failure"
    )
    retry_max_ms: Annotated[int, Field(ge=1)] = Field(
        60_000, description="cap of the exponential backoff (and of Retry-After)"
    )
    retry_multiplier: Annotated[float, Field(ge=1.0)] = Field(2.0, description="backoff factor")
    retry_jitter: Annotated[float, Field(ge=0.0, le=1.0)] = Field(
        0.2, description="random +- fraction applied to each delay"
    )

    @model_validator(mode="after")
    def _api_settings(self) -> InfluxConfig:
        if self.api is InfluxApi.V1 and not self.db:
            raise ValueError("influx.db is required with api = 'v1'")
        if self.api is InfluxApi.V2 and not (self.bucket and self.org is not None):
            raise ValueError("influx.bucket and influx.org are required with api = 'v2'")
        return self


class SpoolConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: Path = Field(Path("/var/lib/loaxa/spool.sqlite"), description="SQLite spool file")
    max_bytes: Annotated[int, Field(ge=1024)] = Field(
        512 * 1024 * 1024, description="line bytes the spool may hold before the full policy"
    )
    full_policy: SpoolFullPolicy = Field(SpoolFullPolicy.REJECT, description="when full")
    dead_letter_path: Path = Field(
        Path("/var/lib/loaxa/dead-letter.jsonl"), description="refused points, JSON lines"
    )
    fsync: bool = Field(True, description="fsync each append (durable before the MQTT ACK)")


class StorageConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    influx: InfluxConfig = InfluxConfig()
    spool: SpoolConfig = SpoolConfig()
