"""The agent's configuration: one TOML file, validated with pydantic before anything starts.

Sections and their owners: [station] [mqtt] [mqtt.tls] (agent/mqtt_config.py), [controller]
(agent/controller.py), [audio] (agent/audio.py), [acoustic] (agent/acoustic.py), and here
[telemetry] [queue] [state]. Every key has a description; config/agent.example.toml shows them
all and is checked by tests/test_agent_config.py. Errors name the key path:
``mqtt.port: must be <= 65535``.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agent.acoustic import AcousticConfig
from agent.audio import AudioConfig
from agent.controller import ControllerConfig
from agent.mqtt_config import MqttConfig, StationConfig
from agent.queue import DEFAULT_MAX_BYTES


class ConfigError(Exception):
    """A configuration file that cannot be used; ``problems`` lists "key.path: what is wrong"."""

    def __init__(self, path: str | Path, problems: list[str]) -> None:
        self.path = str(path)
        self.problems = problems
        super().__init__(f"{path}: " + "; ".join(problems))


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TelemetryConfig(_Section):
    interval_s: Annotated[float, Field(ge=1, le=86400)] = Field(
        60.0, description="seconds between telemetry messages"
    )


class QueueConfig(_Section):
    path: Path | None = Field(
        None, description="SQLite file of the offline queue; default <state.dir>/queue.sqlite"
    )
    max_bytes: Annotated[int, Field(ge=64 * 1024)] = Field(
        DEFAULT_MAX_BYTES,
        description="bound of the offline queue; the oldest messages are dropped beyond it "
        "(default 32 MiB: 7 days of telemetry at 60 s, see agent/queue.py)",
    )


class StateConfig(_Section):
    dir: Path = Field(
        Path("/var/lib/loaxa-agent"),
        description="directory for the session and seq counters and the broadcast log state",
    )


class AgentConfig(_Section):
    station: StationConfig = Field(description="identity of this station")
    mqtt: MqttConfig = Field(description="broker connection")
    controller: ControllerConfig = Field(description="serial link to the controller MCU")
    audio: AudioConfig = Field(AudioConfig(), description="audio level input")
    acoustic: AcousticConfig = Field(AcousticConfig(), description="microphone check")
    telemetry: TelemetryConfig = Field(TelemetryConfig(), description="telemetry timing")
    queue: QueueConfig = Field(QueueConfig(), description="offline queue")
    state: StateConfig = Field(StateConfig(), description="persistent counters")

    @property
    def queue_path(self) -> Path:
        return self.queue.path or self.state.dir / "queue.sqlite"


_MESSAGES = {
    "less_than_equal": "must be <= {le}",
    "greater_than_equal": "must be >= {ge}",
    "less_than": "must be < {lt}",
    "greater_than": "must be > {gt}",
    "missing": "required key is missing",
    "extra_forbidden": "unknown key (check the spelling)",
    "literal_error": "must be one of {expected}",
    "path_not_file": "file does not exist",
}


def describe(error: dict[str, Any]) -> str:
    """One pydantic error as "key.path: problem"."""
    where = ".".join(str(p) for p in error["loc"]) or "(top level)"
    template = _MESSAGES.get(error["type"])
    try:
        text = template.format(**error.get("ctx", {})) if template else error["msg"]
    except KeyError:
        text = error["msg"]
    shown = error["type"] not in ("missing", "extra_forbidden") and "password" not in where
    shown = shown and not isinstance(error.get("input"), dict)  # a whole section: may hold secrets
    if shown and "input" in error:
        text += f" (got {_clip(repr(error['input']))})"
    return f"{where}: {text}"


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def parse_config(data: dict[str, Any], source: str | Path = "<config>") -> AgentConfig:
    try:
        return AgentConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(source, [describe(e) for e in err.errors()]) from err


def load_config(path: str | Path) -> AgentConfig:
    """Read and validate a TOML file; ConfigError names the file and every bad key."""
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as err:
        raise ConfigError(path, [f"cannot read: {err.strerror}"]) from err
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(path, [f"invalid TOML: {err}"]) from err
    except UnicodeDecodeError as err:  # TOML is UTF-8; a damaged file must still be a clear error
        raise ConfigError(path, [f"not UTF-8 text: {err.reason} at byte {err.start}"]) from err
    return parse_config(data, path)
