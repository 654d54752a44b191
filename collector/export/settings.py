"""Load what an export needs from the collector's TOML file: inventory, [influx], [export]."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from collector.config import CollectorConfig, ConfigError, load_config
from collector.export.config import ExportConfig
from collector.export.influx_query import InfluxReader
from collector.inventory import Inventory, load_inventory
from collector.storage.config import InfluxConfig


@dataclass(frozen=True)
class ExportSettings:
    collector: CollectorConfig
    export: ExportConfig
    inventory: Inventory


def load_settings(path: str | Path) -> ExportSettings:
    """The collector's config (its ``[export]`` section included, paths resolved against the
    file's folder) and its inventory; ConfigError/InventoryError name what is wrong."""
    collector = load_config(path)
    return ExportSettings(collector, collector.export, load_inventory(collector.inventory))


def reader_for(influx: InfluxConfig, timeout_s: float = 120.0) -> InfluxReader:
    """A /query reader from the collector's [influx] section (v1 db, or v2 bucket 'db/rp')."""
    db = influx.db or (influx.bucket or "").split("/")[0]
    if not db:
        raise ConfigError("influx: the export needs influx.db (or a v1-mapped influx.bucket)")
    return InfluxReader(
        url=influx.url,
        db=db,
        user=influx.user,
        password=influx.password,
        token=influx.token if influx.api.value == "v2" else None,
        timeout_s=timeout_s,
    )
