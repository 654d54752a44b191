"""Turns open alerts into rendered notifications: people from the inventory, words from templates.

The inventory is duck-typed (collector/inventory.py provides it): ``stations[id]`` with ``name``,
``commune`` and optional ``upstream``; ``communes[code].name``; ``upstreams[id].name``;
``technicians_for(station)`` and ``escalation_for(station)`` returning people with ``id``,
``name``, ``phone``, ``email``, ``language`` (contacts also ``role``: district | department).
"""

from __future__ import annotations

import logging
from typing import Any
from zoneinfo import ZoneInfo

from collector.alerts.notification import Notification, NotificationKind, Recipient, Role
from collector.alerts.open_alert import OpenAlert
from collector.alerts.templates import LanguagePack, Templates

log = logging.getLogger(__name__)
_ROLE_ORDER = (Role.DISTRICT, Role.DEPARTMENT)
DEFAULT_TZ = "Asia/Ho_Chi_Minh"


def to_recipient(person: Any, role: Role = Role.TECHNICIAN) -> Recipient:
    raw_role = getattr(person, "role", None)
    try:
        role = Role(str(getattr(raw_role, "value", raw_role))) if raw_role else role
    except ValueError:
        log.warning("contact %s has unknown role %r; treated as district", person.id, raw_role)
        role = Role.DISTRICT
    return Recipient(
        id=str(person.id),
        name=str(person.name),
        phone=getattr(person, "phone", None) or None,
        email=getattr(person, "email", None) or None,
        language=str(getattr(person, "language", None) or "vi"),
        role=role,
    )


class MessageBuilder:
    def __init__(self, inventory: Any, templates: Templates) -> None:
        self.inventory, self.templates = inventory, templates
        province = getattr(inventory, "province", None)
        self.tz = ZoneInfo(getattr(province, "timezone", None) or DEFAULT_TZ)

    # --- people -------------------------------------------------------------------------
    def _lookup(self, fn: Any, station: str) -> list[Any]:
        try:
            return list(fn(station))
        except KeyError as err:  # a station the inventory does not know: nobody to page
            log.warning("station %r is not in the inventory (%s): nobody to notify", station, err)
            return []

    def technicians(self, stations: list[str]) -> list[Recipient]:
        people = (self._lookup(self.inventory.technicians_for, s) for s in stations)
        return _unique(to_recipient(t) for group in people for t in group)

    def escalation_levels(self, stations: list[str]) -> list[list[Recipient]]:
        """Contacts grouped by level: district first, then the provincial department."""
        groups = (self._lookup(self.inventory.escalation_for, s) for s in stations)
        people = _unique(to_recipient(c, Role.DISTRICT) for group in groups for c in group)
        levels = [[p for p in people if p.role == role] for role in _ROLE_ORDER]
        return [level for level in levels if level]

    def person(self, person_id: str, stations: list[str]) -> Recipient | None:
        everyone = self.technicians(stations)
        for level in self.escalation_levels(stations):
            everyone += level
        for p in everyone:
            if p.id == person_id:
                return p
        return None

    def stations_of_upstream(self, upstream: str) -> list[str]:
        return sorted(
            sid
            for sid, st in self.inventory.stations.items()
            if getattr(st, "upstream", None) == upstream
        )

    # --- words --------------------------------------------------------------------------
    def pack(self, recipient: Recipient) -> LanguagePack:
        return self.templates.pack(recipient.language)

    def place(self, alert: OpenAlert, pack: LanguagePack) -> dict[str, object]:
        station = self.inventory.stations.get(alert.station) if alert.station else None
        commune = self.inventory.communes.get(alert.commune) if alert.commune else None
        return {
            "station": alert.station,
            "commune": alert.commune,
            "code": alert.code,
            "station_name": getattr(station, "name", alert.station),
            "commune_name": getattr(commune, "name", alert.commune),
            "state": pack.state(alert.state),
            "cause": pack.cause(alert.cause),
            "since": pack.local_time(alert.opened_ms, self.tz),
        }

    def upstream_place(self, alert: OpenAlert, pack: LanguagePack) -> dict[str, object]:
        upstreams = getattr(self.inventory, "upstreams", {}) or {}
        names = [getattr(self.inventory.stations.get(s), "name", s) for s in alert.stations]
        return {
            "upstream": alert.upstream,
            "code": alert.code,
            "upstream_name": getattr(upstreams.get(alert.upstream), "name", alert.upstream),
            "since": pack.local_time(alert.opened_ms, self.tz),
            "count": len(alert.stations),
            "stations": pack.join(names),
        }

    def subject_name(self, alert: OpenAlert, pack: LanguagePack) -> str:
        if alert.is_upstream:
            return str(self.upstream_place(alert, pack)["upstream_name"])
        return str(self.place(alert, pack)["station_name"])

    # --- notifications ------------------------------------------------------------------
    def build(
        self,
        kind: NotificationKind,
        template: str,
        recipient: Recipient,
        alerts: list[OpenAlert],
        now_ms: int,
        extra: dict[str, object] | None = None,
    ) -> Notification:
        pack = self.pack(recipient)
        first = alerts[0]
        values = self.upstream_place(first, pack) if first.is_upstream else self.place(first, pack)
        values.update(extra or {})
        if template == "alert_group":
            items = [pack.render("alert_group", "item", self.place(a, pack)) for a in alerts]
            values = {"count": len(alerts), "items": pack.join(items)}
        return Notification(
            kind=kind,
            recipient=recipient,
            ts_ms=now_ms,
            subject=pack.render(template, "subject", values),
            text=pack.render(template, "text", values),
            codes=tuple(a.code for a in alerts),
            incident_ids=tuple(a.key for a in alerts),
            station=first.station if len(alerts) == 1 else None,
            commune=first.commune if len(alerts) == 1 else None,
            upstream=first.upstream,
            details={"template": template},
        )


def _unique(people: Any) -> list[Recipient]:
    seen: dict[str, Recipient] = {}
    for p in people:
        seen.setdefault(p.id, p)
    return list(seen.values())
