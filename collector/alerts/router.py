"""AlertRouter: health events in, notifications out. Pure logic, the clock is passed in.

* ``on_event(event, now_ms)``: a new incident pages the station's technicians (grouped in a storm,
  capped per person); maintenance incidents and children held back by a failed upstream do not
  page; UPSTREAM_DOWN pages once naming the upstream; a close sends the recovery with the outage
  length to everyone who was told about it.
* ``tick(now_ms)``: grouped messages whose window ended, reminders every ``remind_every_min``
  while unacknowledged, escalation level by level (district, then department) every
  ``escalate_after_min`` while unacknowledged.
* ``acknowledge(incident_id, by, now_ms)`` / ``acknowledge_code`` / ``apply_reply`` ("OK 123").
* ``snapshot()`` / ``restore()``: plain JSON-able state, so a restart neither re-pages nor forgets.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import replace
from typing import Any

from collector.alerts.config import AlertsConfig, RoutingConfig
from collector.alerts.errors import UnknownIncident
from collector.alerts.messages import MessageBuilder
from collector.alerts.notification import Notification
from collector.alerts.notification import NotificationKind as NK
from collector.alerts.open_alert import OpenAlert
from collector.alerts.storm import StormControl
from collector.alerts.templates import Templates
from collector.health.events import Cause, HealthEvent
from collector.health.events import HealthEventKind as HK

log = logging.getLogger(__name__)
SNAPSHOT_VERSION = 1
_REPLY = re.compile(r"^\s*OK[\s:,.#-]*(\d[\d\s,;]*)$", re.IGNORECASE)
_INFO = {
    HK.FLAP_SUMMARY: "flap_summary",
    HK.UNSCHEDULED_BROADCAST: "unscheduled_broadcast",
    HK.BATTERY_WARNING: "battery_warning",
    HK.CONTROLLER_LOST: "controller_lost",
}


def _info_fields(event: HealthEvent) -> dict[str, object]:
    """Template fields from the health event's details (collector/health/events.py names them
    for the engine: ``count``, ``time_left_min``; the templates say ``flaps``, ``hours_left``)."""
    d = dict(event.details)
    if "count" in d:
        d["flaps"] = d["count"]
    left = d.get("time_left_min")
    if isinstance(left, int | float):
        d["hours_left"] = round(left / 60, 1)
    return d


def parse_reply(text: str) -> list[str]:
    """Codes in a reply such as "OK 123" or "ok 123, 124"; [] when it is not an acknowledgement."""
    match = _REPLY.match(text)
    return re.findall(r"\d+", match.group(1)) if match else []


class AlertRouter:
    def __init__(
        self,
        inventory: Any,
        config: AlertsConfig | RoutingConfig | None = None,
        templates: Templates | None = None,
    ) -> None:
        alerts = config if isinstance(config, AlertsConfig) else AlertsConfig()
        self.cfg = config if isinstance(config, RoutingConfig) else alerts.routing
        templates = templates or Templates.load(alerts.templates_dir, self.cfg.default_language)
        self.msg = MessageBuilder(inventory, templates)
        self.storm = StormControl(
            int(self.cfg.group_window_s * 1000),
            self.cfg.cap_per_window,
            int(self.cfg.cap_window_min * 60_000),
        )
        self.alerts: dict[str, OpenAlert] = {}
        self.stats: Counter[str] = Counter()
        self._next_code = 100

    # --- events -------------------------------------------------------------------------
    def on_event(self, event: HealthEvent, now_ms: int) -> list[Notification]:
        out = self._flush(now_ms)
        self.stats[f"event_{event.kind.value}"] += 1
        if event.kind == HK.INCIDENT_OPENED:
            out += self._opened(event, now_ms)
        elif event.kind == HK.INCIDENT_CLOSED:
            inc = event.incident
            out += self._closed(inc.id if inc else None, now_ms, inc.closed_ms if inc else None)
        elif event.kind == HK.INCIDENT_RECLASSIFIED:
            out += self._reclassified(event, now_ms)
        elif event.kind == HK.UPSTREAM_DOWN:
            out += self._upstream_down(event, now_ms)
        elif event.kind == HK.UPSTREAM_RESTORED:
            key = self._upstream_key(event.upstream)
            out += self._closed(key, now_ms, event.ts_ms) if key else []
        elif event.kind in _INFO:
            out += self._info(event, now_ms)
        return out

    def _opened(self, event: HealthEvent, now_ms: int) -> list[Notification]:
        inc = event.incident
        if inc is None or inc.id in self.alerts:
            self.stats["ignored_duplicate_or_empty"] += 1
            return []
        if inc.maintenance:
            self.stats["suppressed_maintenance"] += 1
            return []
        if inc.cause == Cause.UPSTREAM or (inc.upstream and self._upstream_key(inc.upstream)):
            self.stats["suppressed_upstream_child"] += 1
            return []
        alert = OpenAlert(
            inc.id,
            self._new_code(),
            inc.station,
            inc.commune,
            None,
            inc.state.value,
            inc.cause.value,
            inc.opened_ms,
            now_ms,
        )
        self.alerts[alert.key] = alert
        people = self.msg.technicians([inc.station])
        if not people:
            self.stats["no_technician"] += 1
            log.warning(
                "station %s has no technician: alert %s waits for escalation",
                inc.station,
                alert.code,
            )
        sent = []
        for person in people:
            if self.storm.offer(person.id, alert.key, now_ms):
                alert.mark_sent(person.id)
                sent.append(self.msg.build(NK.ALERT, "alert", person, [alert], now_ms))
            else:
                self.stats["grouped"] += 1
        return self._capped(sent)

    def _closed(
        self, key: str | None, now_ms: int, until_ms: int | None = None
    ) -> list[Notification]:
        """Recovery to everyone told. The outage length is in station time (opened to
        ``until_ms``, the close the engine decided), not when this message happens to leave."""
        alert = self.alerts.pop(key, None) if key else None
        if alert is None:
            self.stats["closed_without_alert"] += 1
            return []
        self.storm.discard(alert.key)
        kind, template = (
            (NK.UPSTREAM_RESTORED, "upstream_restored")
            if alert.is_upstream
            else (NK.RECOVERY, "recovery")
        )
        until = now_ms if until_ms is None else until_ms
        out = []
        for person in self._people(alert):
            pack = self.msg.templates.pack(person.language)
            extra = {
                "duration": pack.duration(until - alert.opened_ms),
                "until": pack.local_time(until, self.msg.tz),
            }
            n = self.msg.build(kind, template, person, [alert], now_ms, extra)
            details = {**n.details, "opened_ms": alert.opened_ms, "closed_ms": until}
            out.append(replace(n, details={**details, "outage_ms": until - alert.opened_ms}))
        return self._capped(out)

    def _reclassified(self, event: HealthEvent, now_ms: int) -> list[Notification]:
        alert = self.alerts.get(event.incident.id) if event.incident else None
        if alert is None:
            return []
        alert.state, alert.cause = event.incident.state.value, event.incident.cause.value
        return self._capped(
            [self.msg.build(NK.UPDATE, "update", p, [alert], now_ms) for p in self._people(alert)]
        )

    def _upstream_down(self, event: HealthEvent, now_ms: int) -> list[Notification]:
        if not event.upstream or self._upstream_key(event.upstream):
            self.stats["ignored_duplicate_or_empty"] += 1
            return []
        stations = event.details.get("stations")
        stations = (
            [str(s) for s in stations]
            if isinstance(stations, list)
            else self.msg.stations_of_upstream(event.upstream)
        )
        alert = OpenAlert(
            f"upstream:{event.upstream}:{event.ts_ms}",
            self._new_code(),
            None,
            None,
            event.upstream,
            "down",
            Cause.UPSTREAM.value,
            event.ts_ms,
            now_ms,
            stations=stations,
        )
        self.alerts[alert.key] = alert
        out = []
        for person in self.msg.technicians(stations):
            alert.mark_sent(person.id)
            out.append(self.msg.build(NK.UPSTREAM_DOWN, "upstream_down", person, [alert], now_ms))
        return self._capped(out)

    def _info(self, event: HealthEvent, now_ms: int) -> list[Notification]:
        if not event.station:
            return []
        alert = OpenAlert(
            "info",
            "",
            event.station,
            event.commune,
            None,
            "unknown",
            "unknown",
            event.ts_ms,
            now_ms,
        )
        return self._capped(
            [
                self.msg.build(NK.INFO, _INFO[event.kind], p, [alert], now_ms, _info_fields(event))
                for p in self.msg.technicians([event.station])
            ]
        )

    # --- time ---------------------------------------------------------------------------
    def tick(self, now_ms: int) -> list[Notification]:
        out = self._flush(now_ms)
        due: dict[tuple[NK, str], tuple[Any, list[OpenAlert]]] = {}  # grouped per person

        def add(kind: NK, person: Any, alert: OpenAlert) -> None:
            due.setdefault((kind, person.id), (person, []))[1].append(alert)
            alert.mark_sent(person.id)

        open_alerts = [a for a in self.alerts.values() if a.acked_by is None]
        for alert, levels, due_level in self._escalations_due(open_alerts, now_ms):
            while alert.escalation_level < due_level:
                self.stats["escalations"] += 1
                for person in levels[alert.escalation_level]:
                    add(NK.ESCALATION, person, alert)
                alert.escalation_level += 1
        for alert, people in self._reminders_due(open_alerts, now_ms):
            self.stats["reminders"] += 1
            alert.reminders += 1
            alert.last_reminder_ms = now_ms
            for person in people:
                add(NK.REMINDER, person, alert)
        timed = [
            self._timed(kind, person, alerts, now_ms) for (kind, _), (person, alerts) in due.items()
        ]
        return out + self._capped(timed)

    def _escalations_due(self, alerts: list[OpenAlert], now_ms: int) -> list[tuple]:
        """(alert, levels, level to reach); like reminders, one level due within the group window
        of another for the same contact joins it."""
        esc_ms, window = self.cfg.escalate_after_min * 60_000, self.storm.window_ms
        candidates, strict_people = [], set()
        for alert in alerts:
            levels = self.msg.escalation_levels(self._stations(alert))
            strict = min(int((now_ms - alert.paged_ms) // esc_ms), len(levels))
            near = min(int((now_ms - alert.paged_ms + window) // esc_ms), len(levels))
            if near > alert.escalation_level:
                candidates.append((alert, levels, strict, near))
                strict_people.update(
                    p.id for lv in levels[alert.escalation_level : strict] for p in lv
                )
        out = []
        for alert, levels, strict, near in candidates:
            joins = any(p.id in strict_people for lv in levels[strict:near] for p in lv)
            out.append((alert, levels, near if joins else strict))
        return out

    def _reminders_due(self, alerts: list[OpenAlert], now_ms: int) -> list[tuple[OpenAlert, list]]:
        """Alerts whose reminder is due; one due within the group window of another for the same
        person joins it, so the alerts of one storm are reminded in one message, not one by one."""
        remind_ms = self.cfg.remind_every_min * 60_000
        candidates, strict_people = [], set()
        for alert in alerts:
            age = now_ms - (alert.last_reminder_ms or alert.paged_ms)
            if alert.reminders >= self.cfg.max_reminders or age < remind_ms - self.storm.window_ms:
                continue
            people = self.msg.technicians(self._stations(alert))
            candidates.append((alert, people, age >= remind_ms))
            if age >= remind_ms:
                strict_people.update(p.id for p in people)
        return [
            (alert, people)
            for alert, people, strict in candidates
            if strict or any(p.id in strict_people for p in people)
        ]

    def _timed(self, kind: NK, person: Any, alerts: list[OpenAlert], now_ms: int) -> Notification:
        """A reminder or escalation: one alert in full, several as one grouped message."""
        if len(alerts) > 1:
            return self.msg.build(kind, "alert_group", person, alerts, now_ms)
        alert = alerts[0]
        pack = self.msg.templates.pack(person.language)
        if alert.is_upstream:
            return self.msg.build(kind, "upstream_down", person, alerts, now_ms)
        if kind == NK.REMINDER:
            extra = {"duration": pack.duration(now_ms - alert.opened_ms)}
            return self.msg.build(kind, "reminder", person, alerts, now_ms, extra)
        techs = ", ".join(p.name for p in self.msg.technicians(self._stations(alert))) or "-"
        extra = {"technicians": techs, "duration": pack.duration(now_ms - alert.paged_ms)}
        return self.msg.build(kind, "escalation", person, alerts, now_ms, extra)

    def _flush(self, now_ms: int) -> list[Notification]:
        out = []
        for person_id, keys in self.storm.due(now_ms):
            alerts = [self.alerts[k] for k in keys if k in self.alerts]
            alerts = [a for a in alerts if a.acked_by is None]
            stations = [s for a in alerts for s in self._stations(a)]
            person = self.msg.person(person_id, stations) if alerts else None
            if person is None:
                continue
            for a in alerts:
                a.mark_sent(person_id)
            if len(alerts) == 1:
                out.append(self.msg.build(NK.ALERT, "alert", person, alerts, now_ms))
            else:
                out.append(self.msg.build(NK.ALERT_GROUP, "alert_group", person, alerts, now_ms))
        return self._capped(out)

    def _capped(self, notifications: list[Notification]) -> list[Notification]:
        out = []
        for n in notifications:
            if self.storm.allow(n.recipient.id, n.ts_ms):
                out.append(n)
            else:
                self.stats["capped"] += 1
                log.warning(
                    "storm cap: %s to %s dropped (%s)",
                    n.kind.value,
                    n.recipient.id,
                    ",".join(n.codes) or n.station,
                )
        return out

    # --- acknowledgement ----------------------------------------------------------------
    def acknowledge(self, incident_id: str, by: str, now_ms: int) -> list[Notification]:
        """Stop reminders and escalation; tell the others who took it. UnknownIncident if none."""
        alert = self.alerts.get(incident_id) or self._by_code(incident_id)
        if alert is None:
            self.stats["ack_unknown"] += 1
            raise UnknownIncident(f"no open alert for incident or code {incident_id!r}")
        if alert.acked_by is not None:
            return []
        alert.acked_by, alert.acked_ms = by, now_ms
        self.stats["acknowledged"] += 1
        self.storm.discard(alert.key)
        out = []
        for person in self._people(alert):
            if by in (person.id, person.name, person.phone):
                continue
            pack = self.msg.templates.pack(person.language)
            extra = {
                "by": by,
                "at": pack.local_time(now_ms, self.msg.tz),
                "subject_name": self.msg.subject_name(alert, pack),
            }
            out.append(
                self.msg.build(NK.ACK_CONFIRM, "ack_confirm", person, [alert], now_ms, extra)
            )
        return self._capped(out)

    def acknowledge_code(self, code: str, by: str, now_ms: int) -> list[Notification]:
        alert = self._by_code(code)
        if alert is None:
            self.stats["ack_unknown"] += 1
            raise UnknownIncident(f"no open alert with code {code!r}")
        return self.acknowledge(alert.key, by, now_ms)

    def apply_reply(self, text: str, sender: str, now_ms: int) -> list[Notification]:
        """An SMS (or chat) reply "OK <code> [<code>...]"; other text is counted and logged."""
        codes = parse_reply(text)
        if not codes:
            self.stats["reply_not_ack"] += 1
            log.info("reply from %s is not an acknowledgement: %r", sender, text[:80])
            return []
        by = self._name_for(sender)
        out: list[Notification] = []
        for code in codes:
            try:
                out += self.acknowledge_code(code, by, now_ms)
            except UnknownIncident:
                log.warning("reply from %s acknowledges unknown code %s", sender, code)
        return out

    # --- helpers ------------------------------------------------------------------------
    def _new_code(self) -> str:
        used = {a.code for a in self.alerts.values()}
        for _ in range(900):
            code, self._next_code = str(self._next_code), 100 + (self._next_code - 99) % 900
            if code not in used:
                return code
        raise RuntimeError("more than 900 open alerts: no acknowledgement code left")

    def _by_code(self, code: str) -> OpenAlert | None:
        return next((a for a in self.alerts.values() if a.code == code.strip()), None)

    def _upstream_key(self, upstream: str | None) -> str | None:
        return next(
            (a.key for a in self.alerts.values() if a.is_upstream and a.upstream == upstream), None
        )

    def _stations(self, alert: OpenAlert) -> list[str]:
        return alert.stations if alert.is_upstream else [alert.station or ""]

    def _people(self, alert: OpenAlert) -> list:
        found = (self.msg.person(pid, self._stations(alert)) for pid in alert.sent_to)
        return [p for p in found if p is not None]

    def _name_for(self, phone: str) -> str:
        digits = re.sub(r"\D", "", phone)[-9:]
        for alert in self.alerts.values():
            for person in self._people(alert) + self.msg.technicians(self._stations(alert)):
                if digits and person.phone and re.sub(r"\D", "", person.phone).endswith(digits):
                    return person.name
        return phone

    # --- persistence --------------------------------------------------------------------
    def snapshot(self) -> dict[str, object]:
        return {
            "v": SNAPSHOT_VERSION,
            "next_code": self._next_code,
            "alerts": [a.to_dict() for a in self.alerts.values()],
            "storm": self.storm.snapshot(),
            "stats": dict(self.stats),
        }

    def restore(self, data: dict) -> None:
        if data.get("v") != SNAPSHOT_VERSION:
            raise ValueError(f"alert snapshot v{data.get('v')!r}, expected v{SNAPSHOT_VERSION}")
        self._next_code = int(data["next_code"])
        self.alerts = {a["key"]: OpenAlert.from_dict(a) for a in data["alerts"]}
        self.storm.restore(data.get("storm", {}))
        self.stats = Counter(data.get("stats", {}))
