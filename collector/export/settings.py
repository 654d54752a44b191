"""Load what an export needs from the collector's TOML file: inventory, [influx], [export].

Until ``CollectorConfig`` composes ``export: ExportConfig`` itself, the ``[export]`` section is
taken out before the collector's own validation (which forbids unknown sections) and validated
here; errors name the key path either way (``export.formats[0]: ...``).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from collector.config import CollectorConfig, ConfigError, format_errors, load_config
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
    path = Path(path)
    if "export" in CollectorConfig.model_fields:
        collector = load_config(path)
        export = collector.export  # type: ignore[attr-defined]
    else:
        collector, export = _load_split(path)
    if not export.directory.is_absolute():
        export = export.model_copy(update={"directory": path.parent / export.directory})
    return ExportSettings(collector, export, load_inventory(collector.inventory))


def _load_split(path: Path) -> tuple[CollectorConfig, ExportConfig]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ConfigError(f"{path}: cannot read: {err.strerror or err}") from err
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from err
    raw_export = data.pop("export", {})
    try:
        collector = CollectorConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(f"{path}: invalid collector config:\n{format_errors(err)}") from err
    try:
        export = ExportConfig.model_validate(raw_export)
    except ValidationError as err:
        lines = format_errors(err).replace("\n  ", "\n  export.")
        raise ConfigError(f"{path}: invalid export config:\n  export.{lines.lstrip()}") from err
    inventory = collector.inventory
    if not inventory.is_absolute():
        collector = collector.model_copy(update={"inventory": path.parent / inventory})
    return collector, export


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
