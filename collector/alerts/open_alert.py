"""An incident (or upstream failure) that paged someone and is not yet closed: plain data."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields


@dataclass
class OpenAlert:
    key: str  # the incident id, or "upstream:<id>:<opened_ms>"
    code: str  # short acknowledgement code: the technician replies "OK <code>"
    station: str | None
    commune: str | None
    upstream: str | None
    state: str
    cause: str
    opened_ms: int
    paged_ms: int
    stations: list[str] = field(default_factory=list)  # affected stations (upstream alerts)
    sent_to: list[str] = field(default_factory=list)  # person ids that got a message about it
    reminders: int = 0
    last_reminder_ms: int | None = None
    escalation_level: int = 0  # escalation levels already paged
    acked_by: str | None = None
    acked_ms: int | None = None

    @property
    def is_upstream(self) -> bool:
        return self.upstream is not None and self.station is None

    def mark_sent(self, person: str) -> None:
        if person not in self.sent_to:
            self.sent_to.append(person)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> OpenAlert:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})
