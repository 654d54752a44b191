"""Settings of the agent's MQTT link ([station], [mqtt], [mqtt.tls]) and the paho client they build.

Kept apart from agent/config.py so the publisher can be used (and tested) without the sensing
units' config models.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from pydantic import BaseModel, ConfigDict, Field, FilePath, SecretStr, model_validator

from loaxa.payloads import StationId
from loaxa.secret_sources import secret_sources
from loaxa.topics import Kind, station_topic

Segment = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StationConfig(_Section):
    id: StationId = Field(description="station id from the inventory, e.g. cb-01267")
    province: Segment = Field(description="province slug used in topics, e.g. cao-bang")
    commune: Segment = Field(description="5-digit GSO code of the commune, e.g. 01273")

    def topic(self, kind: Kind | str) -> str:
        return station_topic(self.province, self.commune, self.id, kind)


class TlsConfig(_Section):
    ca_file: FilePath | None = Field(
        None, description="CA certificate (PEM) to verify the broker; None: system CAs"
    )
    cert_file: FilePath | None = Field(None, description="client certificate (PEM)")
    key_file: FilePath | None = Field(None, description="client private key (PEM)")

    @model_validator(mode="after")
    def _pair(self) -> TlsConfig:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file must be given together")
        return self


class MqttConfig(_Section):
    host: str = Field(min_length=1, description="broker host name or IP address")
    port: int = Field(1883, ge=1, le=65535, description="broker TCP port (8883 usual with TLS)")
    protocol: Literal["5", "3.1.1"] = Field("5", description='MQTT version: "5" or "3.1.1"')
    keepalive_s: int = Field(
        30, ge=5, le=3600, description="keepalive; the broker publishes the Will after 1.5x"
    )
    client_id: str | None = Field(
        None, max_length=64, description='client id; default "loaxa-agent-<station id>"'
    )
    username: str | None = Field(None, description="user name for broker authentication")
    password: SecretStr | None = Field(None, description="password for broker authentication")
    password_file: Path | None = Field(
        None, description="file holding the password (else env LOAXA_MQTT_PASSWORD)"
    )
    tls: TlsConfig | None = Field(None, description="TLS settings; absent: plain TCP")
    qos: Literal[0, 1, 2] = Field(1, description="QoS of telemetry/events/broadcast log")
    max_inflight: int = Field(
        50, ge=1, le=1000, description="messages sent but not yet acknowledged (pipelining)"
    )
    retry_min_s: float = Field(1.0, gt=0, description="first reconnect delay (doubles)")
    retry_max_s: float = Field(60.0, gt=0, description="longest reconnect delay")

    _secrets = model_validator(mode="before")(secret_sources({"password": "LOAXA_MQTT_PASSWORD"}))

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


def make_client(cfg: MqttConfig, client_id: str, will_topic: str, will: bytes) -> mqtt.Client:
    """A fresh paho client for one connection attempt (no state carried between attempts)."""
    v5 = cfg.protocol == "5"
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
        clean_session=None if v5 else True,
        reconnect_on_failure=False,  # the publisher's link thread reconnects (new session)
    )
    if cfg.username is not None:
        password = cfg.password.get_secret_value() if cfg.password else None
        client.username_pw_set(cfg.username, password)
    if cfg.tls is not None:
        client.tls_set(
            ca_certs=_str(cfg.tls.ca_file),
            certfile=_str(cfg.tls.cert_file),
            keyfile=_str(cfg.tls.key_file),
        )
    client.will_set(will_topic, will, qos=1, retain=True)
    client.max_inflight_messages_set(cfg.max_inflight)
    client.connect_timeout = 10.0
    return client


def _str(path: Path | None) -> str | None:
    return str(path) if path is not None else None
