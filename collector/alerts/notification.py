"""What the router decides to send: a rendered message for one person (plain data, no I/O)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum


class NotificationKind(StrEnum):
    ALERT = "alert"  # one new incident
    ALERT_GROUP = "alert_group"  # several new incidents in one storm window
    REMINDER = "reminder"  # still open, nobody acknowledged
    ESCALATION = "escalation"  # to district / department contacts
    RECOVERY = "recovery"  # back on air, with the outage length
    UPSTREAM_DOWN = "upstream_down"  # one message naming the failed gateway/relay/uplink
    UPSTREAM_RESTORED = "upstream_restored"
    UPDATE = "update"  # an open incident was reclassified
    INFO = "info"  # flapping, unscheduled broadcast, battery warning: no acknowledgement
    ACK_CONFIRM = "ack_confirm"  # tells the others who acknowledged


class Role(StrEnum):
    TECHNICIAN = "technician"
    DISTRICT = "district"
    DEPARTMENT = "department"


@dataclass(frozen=True)
class Recipient:
    id: str
    name: str
    phone: str | None
    email: str | None
    language: str = "vi"
    role: Role = Role.TECHNICIAN


@dataclass(frozen=True)
class Notification:
    kind: NotificationKind
    recipient: Recipient
    subject: str  # e-mail subject, chat title
    text: str  # SMS text and e-mail body
    ts_ms: int
    codes: tuple[str, ...] = ()  # acknowledgement codes ("OK <code>")
    incident_ids: tuple[str, ...] = ()
    station: str | None = None
    commune: str | None = None
    upstream: str | None = None
    details: dict[str, object] = field(default_factory=dict)

    def to_json_dict(self) -> dict[str, object]:
        """The JSON body of the webhook and of the MQTT alert message (schema v1)."""
        data = asdict(self)
        data["v"] = 1
        data["kind"] = self.kind.value
        # Contact details stay out of the feed: it goes to chat rooms and dashboards.
        data["recipient"] = {
            k: v for k, v in data["recipient"].items() if k not in ("phone", "email")
        }
        data["codes"] = list(self.codes)
        data["incident_ids"] = list(self.incident_ids)
        return data
