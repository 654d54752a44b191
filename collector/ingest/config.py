"""Config models of the ingest unit: ``[mqtt]``, ``[[serial_gateways]]``, ``[validation]``.

Composed into the collector's TOML file by ``collector/config.py``; documented, with an
example, in ``config/collector.example.toml``.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from collector.ingest.validate import Limits
from loaxa.payloads import MAX_PAYLOAD_BYTES
from loaxa.secret_sources import secret_sources
from loaxa.topics import check_segment, subscription


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MqttConfig(_Model):
    host: str = Field("127.0.0.1", description="broker host name or address")
    port: int = Field(1883, ge=1, le=65535, description="broker port")
    client_id: str = Field(
        "loaxa-collector",
        min_length=1,
        description="fixed id: the broker keeps this collector's session (and queued messages)",
    )
    username: str | None = Field(None, description="broker user, if it requires one")
    password: str | None = Field(None, description="broker password")
    password_file: str | None = Field(
        None, description="file holding the password (else env LOAXA_MQTT_PASSWORD)"
    )
    ops_username: str | None = Field(
        None,
        description="account of the second (alerts/acks) session; required on a broker with "
        "use_username_as_clientid (deploy/mosquitto): one account cannot hold two sessions",
    )
    ops_password: str | None = Field(None, description="password of ops_username")
    ops_password_file: str | None = Field(
        None, description="file holding ops_password (else env LOAXA_MQTT_OPS_PASSWORD)"
    )
    _secrets = model_validator(mode="before")(
        secret_sources(
            {"password": "LOAXA_MQTT_PASSWORD", "ops_password": "LOAXA_MQTT_OPS_PASSWORD"}
        )
    )
    tls_ca_file: str | None = Field(None, description="CA file: set to connect with TLS")
    keepalive_s: int = Field(30, ge=5, le=3600, description="MQTT keepalive")
    session_expiry_s: int = Field(
        7 * 86_400,
        ge=0,
        description="how long the broker keeps our session and queues messages while we are away",
    )
    topics: list[str] = Field(
        default_factory=lambda: [subscription()],
        min_length=1,
        description="topic filters to subscribe (QoS 1)",
    )
    shared_group: str | None = Field(
        None,
        description="subscribe as $share/<group>/<filter> so several collectors split the load",
    )
    receive_maximum: int = Field(
        1000, ge=1, le=65535, description="unacknowledged QoS 1 messages the broker may send us"
    )
    max_batch: int = Field(2000, ge=1, description="messages validated and stored per batch")

    @field_validator("shared_group")
    @classmethod
    def _group_is_segment(cls, v: str | None) -> str | None:
        return None if v is None else check_segment("shared_group", v)

    def filters(self) -> list[str]:
        if self.shared_group is None:
            return list(self.topics)
        return [f"$share/{self.shared_group}/{t}" for t in self.topics]


class SerialGatewayConfig(_Model):
    id: str = Field(description="upstream id in the inventory; its stations carry `address`")
    url: str = Field(description="pyserial URL or device: /dev/ttyUSB0, rfc2217://host:port")
    baudrate: int = Field(115200, description="line speed (9600 on radio modems)")
    poll_interval_s: float = Field(
        60.0, gt=0, description="each station is polled for telemetry this often"
    )
    response_timeout_s: float = Field(
        0.25, gt=0, le=10, description="wait this long for a reply (SPEC: MCU answers in 100 ms)"
    )
    retries: int = Field(
        3, ge=0, le=5, description="resends of an unanswered POLL (SPEC FP-TIME-2: 3)"
    )
    dead_after_s: float = Field(
        180.0, gt=0, description="no frame from any station this long: gateway reported down"
    )
    reopen_after_s: float = Field(5.0, gt=0, description="delay before reopening a failed port")


class ValidationConfig(_Model):
    max_bytes: Annotated[int, Field(ge=64, le=1 << 20)] = MAX_PAYLOAD_BYTES
    max_future_s: float = Field(300, ge=0, description="reject readings further ahead than this")
    max_age_s: float = Field(30 * 86_400, gt=0, description="reject readings older than this")
    skew_warn_s: float = Field(60, gt=0, description="log a station whose clock is off this much")
    reject_log_every_s: float = Field(
        10, ge=0, description="log each reject reason at most this often"
    )

    def limits(self) -> Limits:
        return Limits(
            max_bytes=self.max_bytes,
            max_future_ms=int(self.max_future_s * 1000),
            max_age_ms=int(self.max_age_s * 1000),
        )
