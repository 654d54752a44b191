"""Incident causes and the events that open, close and correct incidents.

Event times (``HealthEvent.ts_ms``) are station time: an opening carries the moment the
problem began (``Incident.opened_ms``), a closing the moment it ended; ``details["detected_ms"]``
says when the engine knew. Details are template variables for alerts.

Invariant: every INCIDENT_OPENED is followed by exactly one INCIDENT_CLOSED with the same id;
INCIDENT_RECLASSIFIED (zero or more, in between) carries the corrected incident. An incident
found to be "link down, station on air" is closed with state LINK_DOWN and cause NETWORK.
"""

from __future__ import annotations

from dataclasses import replace

from collector.health.events import Cause, HealthEvent, HealthEventKind, Incident, State

RECLASSIFIED_ON_AIR = "link restored, station was on air"


def cause_for(state: State, *, on_battery: bool, amp_fault: bool, upstream: str | None) -> Cause:
    """The cause the evidence points to when an incident opens."""
    if upstream is not None:
        return Cause.UPSTREAM
    if state is State.SILENT:
        if amp_fault:
            return Cause.EQUIPMENT
        return Cause.POWER if on_battery else Cause.AUDIO_CHAIN
    return Cause.POWER if on_battery else Cause.UNKNOWN


def _details(inc: Incident, **extra: object) -> dict[str, object]:
    return {"held": inc.cause is Cause.UPSTREAM, "maintenance": inc.maintenance, **extra}


def opened(inc: Incident, detected_ms: int) -> HealthEvent:
    return HealthEvent(
        HealthEventKind.INCIDENT_OPENED,
        inc.opened_ms,
        inc.station,
        inc.commune,
        inc,
        inc.upstream,
        _details(inc, detected_ms=detected_ms),
    )


def closed(inc: Incident, closed_ms: int) -> tuple[Incident, HealthEvent]:
    done = replace(inc, closed_ms=closed_ms)
    minutes = round((closed_ms - inc.opened_ms) / 60_000, 1)
    event = HealthEvent(
        HealthEventKind.INCIDENT_CLOSED,
        closed_ms,
        inc.station,
        inc.commune,
        done,
        inc.upstream,
        _details(done, duration_min=minutes),
    )
    return done, event


def reclassified(old: Incident, new: Incident, ts_ms: int, message: str) -> HealthEvent:
    return HealthEvent(
        HealthEventKind.INCIDENT_RECLASSIFIED,
        ts_ms,
        new.station,
        new.commune,
        new,
        new.upstream,
        _details(
            new,
            message=message,
            previous_state=old.state.value,
            previous_cause=old.cause.value,
            previous_opened_ms=old.opened_ms,
        ),
    )
