"""AlertsConfig: the ``[alerts]`` table of the collector TOML (composed by collector/config.py).

Each channel owns its small model; ``AlertsConfig`` composes them with the routing rules, the
retry policy and the order in which channels are tried for a recipient.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from loaxa.secret_sources import secret_sources

_REPO_TEMPLATES = Path(__file__).resolve().parents[2] / "config" / "templates"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ChannelName(StrEnum):
    SMS = "sms"
    EMAIL = "email"
    WEBHOOK = "webhook"
    MQTT = "mqtt"


class SmsConfig(_Model):
    enabled: bool = Field(False, description="send SMS through a GSM modem")
    port: str = Field("/dev/ttyUSB2", description="serial device or pyserial URL of the modem")
    baudrate: int = Field(115200, description="serial speed")
    timeout_s: Annotated[float, Field(gt=0)] = Field(10.0, description="wait for OK/ERROR")
    poll_interval_s: Annotated[float, Field(gt=0)] = Field(
        5.0, description="how often unread SMS (acknowledgement replies) are read"
    )
    validity_hours: Annotated[int, Field(ge=1, le=72)] = Field(
        24, description="how long the network keeps trying to deliver an SMS"
    )


class EmailSecurity(StrEnum):
    STARTTLS = "starttls"
    TLS = "tls"  # implicit TLS (port 465)
    NONE = "none"  # plain SMTP, only for a local relay


class EmailConfig(_Model):
    enabled: bool = Field(False, description="send e-mail over SMTP")
    host: str = Field("localhost", description="SMTP server")
    port: Annotated[int, Field(ge=1, le=65535)] = Field(587, description="SMTP port")
    security: EmailSecurity = Field(EmailSecurity.STARTTLS, description="starttls | tls | none")
    username: str | None = Field(None, description="SMTP login, if the server wants one")
    password: SecretStr | None = Field(None, description="SMTP password")
    password_file: Path | None = Field(
        None, description="file holding the SMTP password (else env LOAXA_SMTP_PASSWORD)"
    )
    _secrets = model_validator(mode="before")(secret_sources({"password": "LOAXA_SMTP_PASSWORD"}))
    sender: str = Field("loaxa@localhost", description="From: address")
    timeout_s: Annotated[float, Field(gt=0)] = Field(15.0, description="socket timeout")

    @field_validator("username", "password")
    @classmethod
    def _ascii_only(cls, value: str | SecretStr | None) -> str | SecretStr | None:
        # smtplib sends AUTH credentials as ASCII and would fail at the first alert otherwise.
        raw = value.get_secret_value() if isinstance(value, SecretStr) else value
        if raw is not None and not raw.isascii():
            raise ValueError("SMTP login and password must be ASCII (smtplib's AUTH limitation)")
        return value


class WebhookConfig(_Model):
    enabled: bool = Field(False, description="POST each notification as JSON")
    url: str = Field("http://127.0.0.1:8080/loaxa", description="endpoint (chat bot, ticketing)")
    timeout_s: Annotated[float, Field(gt=0)] = Field(10.0, description="HTTP timeout")
    headers: dict[str, str] = Field(default_factory=dict, description="extra headers (tokens)")


class MqttAlertConfig(_Model):
    enabled: bool = Field(False, description="publish alerts on loaxa/v1/<province>/_ops/alert/...")
    qos: Literal[0, 1, 2] = Field(1, description="publish QoS")
    accept_acks: bool = Field(True, description="accept acknowledgements on _ops/ack/+/+")


class RetryConfig(_Model):
    attempts: Annotated[int, Field(ge=1, le=10)] = Field(3, description="tries per channel")
    backoff_s: Annotated[float, Field(ge=0)] = Field(2.0, description="first wait, doubles")
    backoff_max_s: Annotated[float, Field(ge=0)] = Field(60.0, description="longest wait")


class RoutingConfig(_Model):
    escalate_after_min: Annotated[float, Field(gt=0)] = Field(
        30, description="unacknowledged this long -> next escalation level (district, department)"
    )
    remind_every_min: Annotated[float, Field(gt=0)] = Field(
        15, description="reminder to the technicians while open and unacknowledged"
    )
    max_reminders: Annotated[int, Field(ge=0)] = Field(8, description="reminders per incident")
    group_window_s: Annotated[float, Field(ge=0)] = Field(
        60, description="alerts to one person within this window go out as one grouped message"
    )
    cap_per_window: Annotated[int, Field(ge=1)] = Field(
        10, description="most messages to one person per cap window; the rest are counted, dropped"
    )
    cap_window_min: Annotated[float, Field(gt=0)] = Field(60, description="cap window length")
    default_language: Literal["vi", "en"] = Field("vi", description="when a person has none")


class AlertsConfig(_Model):
    enabled: bool = Field(True, description="route health events to people")
    templates_dir: Path = Field(_REPO_TEMPLATES, description="folder with vi.toml and en.toml")
    routing: RoutingConfig = Field(default_factory=RoutingConfig)
    retry: RetryConfig = Field(default_factory=RetryConfig)
    channel_order: list[ChannelName] = Field(
        default_factory=lambda: [ChannelName.SMS, ChannelName.EMAIL, ChannelName.WEBHOOK],
        description="tried in order per recipient; the next is the fallback of the one before",
    )
    copy_to: list[ChannelName] = Field(
        default_factory=lambda: [ChannelName.MQTT],
        description="channels that also get every notification (operations feed)",
    )
    sms: SmsConfig = Field(default_factory=SmsConfig)
    email: EmailConfig = Field(default_factory=EmailConfig)
    webhook: WebhookConfig = Field(default_factory=WebhookConfig)
    mqtt: MqttAlertConfig = Field(default_factory=MqttAlertConfig)
