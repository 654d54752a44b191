"""The collector's one TOML file: composes each unit's own config model.

    inventory = "inventory.toml"     # path, relative to this file
    [daemon]           DaemonConfig         (this module: state store, job periods)
    [mqtt]             MqttConfig           (collector/ingest/config.py)
    [[serial_gateways]] SerialGatewayConfig (collector/ingest/config.py)
    [validation]       ValidationConfig     (collector/ingest/config.py)
    [influx] [spool]   StorageConfig parts  (collector/storage/config.py)
    [health]           HealthConfig         (collector/health/config.py)
    [alerts]           AlertsConfig         (collector/alerts/config.py)
    [http]             HttpConfig           (collector/http.py)
    [group]            GroupConfig          (collector/group/config.py: scale-out, GROUP.md)

``load_config`` validates without touching the network; an error names the key path
(``mqtt.port: Input should be less than or equal to 65535``). Relative paths are resolved
against the config file's folder. ``config/collector.example.toml`` documents every key.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from collector.alerts.config import AlertsConfig
from collector.export.config import ExportConfig
from collector.group.config import GroupConfig
from collector.health.config import HealthConfig
from collector.http import HttpConfig
from collector.ingest.config import MqttConfig, SerialGatewayConfig, ValidationConfig
from collector.storage.config import InfluxConfig, SpoolConfig, StorageConfig


class ConfigError(ValueError):
    """The collector config file is missing, not TOML, or invalid (message names the key)."""


class DaemonConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    state_db: Path = Field(
        Path("/var/lib/loaxa/state.sqlite"), description="SQLite health state store"
    )
    health_tick_s: Annotated[float, Field(gt=0, le=300)] = Field(
        5.0, description="how often the health engine re-evaluates every station"
    )
    alert_tick_s: Annotated[float, Field(gt=0, le=300)] = Field(
        10.0, description="how often reminders and escalations are checked"
    )
    shutdown_timeout_s: Annotated[float, Field(gt=0)] = Field(
        20.0, description="on SIGTERM: time allowed to store and acknowledge what was received"
    )
    dashboard_feed_s: Annotated[float, Field(ge=0)] = Field(
        300.0,
        description="how often the dashboards' station_info and month-to-date availability are "
        "refreshed (dashboards/feed_job.py); 0: off (run `loaxa dashboards feed` instead)",
    )


class CollectorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    inventory: Path = Field(description="inventory TOML (stations, communes, people)")
    daemon: DaemonConfig = Field(default_factory=DaemonConfig)
    mqtt: MqttConfig = Field(default_factory=MqttConfig)
    serial_gateways: list[SerialGatewayConfig] = Field(default_factory=list)
    validation: ValidationConfig = Field(default_factory=ValidationConfig)
    influx: InfluxConfig = Field(default_factory=InfluxConfig)
    spool: SpoolConfig = Field(default_factory=SpoolConfig)
    health: HealthConfig = Field(default_factory=HealthConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    http: HttpConfig = Field(default_factory=HttpConfig)
    export: ExportConfig = Field(default_factory=ExportConfig)
    group: GroupConfig | None = Field(
        None, description="run as one member of a collector group (collector/GROUP.md)"
    )

    @model_validator(mode="after")
    def _unique_gateways(self) -> CollectorConfig:
        ids = [g.id for g in self.serial_gateways]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"serial_gateways: id {', '.join(dupes)} used more than once")
        return self

    @property
    def storage(self) -> StorageConfig:
        return StorageConfig(influx=self.influx, spool=self.spool)


def load_config(path: str | Path) -> CollectorConfig:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ConfigError(f"{path}: cannot read: {err.strerror or err}") from err
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from err
    except UnicodeDecodeError as err:  # TOML is UTF-8; a damaged file is a clear error too
        raise ConfigError(f"{path}: not UTF-8 text: {err.reason} at byte {err.start}") from err
    try:
        config = CollectorConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(f"{path}: invalid collector config:\n{format_errors(err)}") from err
    return _resolve_paths(config, path.parent)


def format_errors(err: ValidationError) -> str:
    lines = []
    for e in err.errors(include_url=False):
        where = ".".join(str(p) for p in e["loc"]) or "(top level)"
        lines.append(f"  {where}: {e['msg']}")
    return "\n".join(lines)


def _resolve_paths(config: CollectorConfig, base: Path) -> CollectorConfig:
    def at(p: Path) -> Path:
        return p if p.is_absolute() else (base / p)

    spool = config.spool.model_copy(
        update={
            "path": at(config.spool.path),
            "dead_letter_path": at(config.spool.dead_letter_path),
        }
    )
    daemon = config.daemon.model_copy(update={"state_db": at(config.daemon.state_db)})
    alerts = config.alerts.model_copy(update={"templates_dir": at(config.alerts.templates_dir)})
    export = config.export.model_copy(update={"directory": at(config.export.directory)})
    group = config.group and config.group.model_copy(update={"dir": at(config.group.dir)})
    return config.model_copy(
        update={
            "inventory": at(config.inventory),
            "spool": spool,
            "daemon": daemon,
            "alerts": alerts,
            "export": export,
            "group": group,
        }
    )
