"""Payloads and health results -> line-protocol points (schema v1, see SCHEMA.md).

Idempotency: InfluxDB identifies a point by measurement + tag set + timestamp; writing the same
key again overwrites the fields. Every point here takes its timestamp from the message (``ts``,
kept unchanged by the agent when it replays) and its tags from the message and its topic, so a
replayed or re-spooled message produces byte-identical lines and overwrites itself.

Two different messages of one station in the same millisecond stay distinct because the tags
that tell them apart are part of the key: the event ``code`` (two different events), the
broadcast ``action`` (start/stop), the ``cluster`` id (cluster series), the incident ``phase``.
The only collision left is the same event code twice in one millisecond from one station, which
is the same physical fact; it is stored once (the later message's fields win).
"""

from __future__ import annotations

import re

from collector.health.events import Cause, Incident, State
from collector.storage import names as n
from collector.storage.line_protocol import FieldValue, encode_line, encode_values, field_prefixes
from loaxa.payloads import Broadcast, Event, Status, Telemetry

_REASON = re.compile(r"^[a-z0-9_]{1,40}$")


def _f(value: float | None) -> float | None:
    """Floats always as float: an int here would create an integer field (a type conflict)."""
    return None if value is None else float(value)


def _base(p: Telemetry | Event | Broadcast | Status) -> dict[str, FieldValue | None]:
    return {n.F_SESSION: p.session, n.F_SEQ: p.seq, n.F_BACKFILL: p.backfill}


_TELEMETRY_FIELDS = field_prefixes(
    (
        n.F_CONTROLLER_OK,
        n.F_UPTIME_S,
        n.F_AGENT_UPTIME_S,
        n.F_AMP,
        n.F_AUDIO_RMS_DBFS,
        n.F_AUDIO_PEAK_DBFS,
        n.F_AUDIO_CLIP_RATIO,
        n.F_AUDIO_SILENT,
        n.F_AUDIO_SOURCE,
        n.F_ACOUSTIC_DBFS,
        n.F_ACOUSTIC_CORR,
        n.F_MAINS_V,
        n.F_BATTERY_V,
        n.F_ON_BATTERY,
        n.F_TEMP_C,
        n.F_FM_FORWARD_W,
        n.F_FM_REFLECTED_W,
        n.F_CLUSTERS,
        n.F_SESSION,
        n.F_SEQ,
        n.F_BACKFILL,
    )
)
_CLUSTER_FIELDS = field_prefixes((n.F_RELAY_ON, n.F_FAULT, n.F_FEED_OK, n.F_RMS_DBFS))


def telemetry_points(p: Telemetry, province: str, commune: str) -> list[str]:
    # encode_values: one message per station per interval, the series part encoded once and
    # the field keys once; the values in _TELEMETRY_FIELDS order.
    tags = ((n.T_PROVINCE, province), (n.T_COMMUNE, commune), (n.T_STATION, p.station))
    a, pw, fm = p.audio, p.power, p.fm
    values = (
        p.controller == "ok",
        p.uptime_s,
        p.agent_uptime_s,
        p.amp.value,
        _f(a.rms_dbfs),
        _f(a.peak_dbfs),
        _f(a.clip_ratio),
        a.silent,
        a.source,
        _f(a.acoustic_dbfs),
        _f(a.acoustic_corr),
        _f(pw.mains_v),
        _f(pw.battery_v),
        pw.on_battery,
        _f(p.temp_c),
        _f(fm.forward_w) if fm else None,
        _f(fm.reflected_w) if fm else None,
        len(p.clusters),
        p.session,
        p.seq,
        p.backfill,
    )
    lines = [encode_values(n.TELEMETRY, tags, _TELEMETRY_FIELDS, values, p.ts)]
    for c in p.clusters:
        ctags = (*tags, (n.T_CLUSTER, str(c.id)), (n.T_CLUSTER_KIND, c.kind.value))
        cvalues = (c.relay_on, c.fault, c.feed_ok, _f(c.rms_dbfs))
        lines.append(encode_values(n.CLUSTER, ctags, _CLUSTER_FIELDS, cvalues, p.ts))
    return lines


def event_point(p: Event, province: str, commune: str) -> str:
    tags = {
        n.T_PROVINCE: province,
        n.T_COMMUNE: commune,
        n.T_STATION: p.station,
        n.T_CODE: p.code.value,
        n.T_ORIGIN: p.origin,
    }
    fields = {
        n.F_EVENT_CLUSTER: p.cluster,
        n.F_VALUE: p.value,
        n.F_RAW_CODE: p.raw_code,
        **_base(p),
    }
    return encode_line(n.EVENT, tags, fields, p.ts)


def broadcast_point(p: Broadcast, province: str, commune: str) -> str:
    tags = {
        n.T_PROVINCE: province,
        n.T_COMMUNE: commune,
        n.T_STATION: p.station,
        n.T_ACTION: p.action,
        n.T_SOURCE: p.source.value,
        n.T_PRIORITY: p.priority.value,
        n.T_DETECTED_BY: p.detected_by,
    }
    duration = None if p.end_ts is None else max(0, p.end_ts - p.start_ts) / 1000.0
    fields = {
        n.F_START_TS: p.start_ts,
        n.F_END_TS: p.end_ts,
        n.F_DURATION_S: duration,
        n.F_CLUSTER_LIST: ",".join(str(c) for c in p.clusters) or None,
        **_base(p),
    }
    return encode_line(n.BROADCAST, tags, fields, p.ts)


def status_point(p: Status, province: str, commune: str) -> str:
    tags = {
        n.T_PROVINCE: province,
        n.T_COMMUNE: commune,
        n.T_STATION: p.station,
        n.T_STATE: p.state,
    }
    fields = {
        n.F_ONLINE: p.state == "online",
        n.F_AGENT_VERSION: p.agent_version,
        n.F_FIRMWARE: p.firmware,
        n.F_HARDWARE: p.hardware,
        n.F_DEVICE_ID: p.device_id,
        n.F_STATUS_REASON: p.reason,
        **_base(p),
    }
    return encode_line(n.STATUS, tags, fields, p.ts)


def points_for_payload(
    payload: Telemetry | Event | Broadcast | Status, province: str, commune: str
) -> list[str]:
    """Lines for one validated agent payload; ``province``/``commune`` come from its topic."""
    if isinstance(payload, Telemetry):
        return telemetry_points(payload, province, commune)
    if isinstance(payload, Event):
        return [event_point(payload, province, commune)]
    if isinstance(payload, Broadcast):
        return [broadcast_point(payload, province, commune)]
    if isinstance(payload, Status):
        return [status_point(payload, province, commune)]
    raise TypeError(f"not a loaxa payload: {type(payload).__name__}")


def state_point(
    ts_ms: int,
    province: str,
    commune: str,
    station: str,
    state: State,
    cause: Cause | None = None,
    link_down: bool = False,
) -> str:
    """Station state from ``ts_ms`` on (written at each transition by the health engine)."""
    tags = {
        n.T_PROVINCE: province,
        n.T_COMMUNE: commune,
        n.T_STATION: station,
        n.T_STATE: State(state).value,
        n.T_CAUSE: Cause(cause).value if cause else None,
    }
    fields = {
        n.F_STATE_NAME: State(state).value,
        n.F_OPERATING: State(state).operating,
        n.F_LINK_DOWN: link_down,
    }
    return encode_line(n.STATION_STATE, tags, fields, ts_ms)


def incident_point(
    incident: Incident, province: str, phase: str = "open", ts_ms: int | None = None
) -> str:
    """One incident transition: ``open`` at opened_ms, ``close`` at closed_ms, ``reclassified``
    at ``ts_ms`` (required). The incident id is a field (ids are unbounded)."""
    if phase == n.PHASE_OPEN:
        ts = incident.opened_ms
    elif phase == n.PHASE_CLOSE:
        if incident.closed_ms is None:
            raise ValueError(f"incident {incident.id}: close point needs closed_ms")
        ts = incident.closed_ms
    elif phase == n.PHASE_RECLASSIFIED:
        if ts_ms is None:
            raise ValueError(f"incident {incident.id}: reclassified point needs ts_ms")
        ts = ts_ms
    else:
        raise ValueError(f"incident phase {phase!r} is not open, reclassified or close")
    duration = incident.duration_ms
    tags = {
        n.T_PROVINCE: province,
        n.T_COMMUNE: incident.commune,
        n.T_STATION: incident.station,
        n.T_STATE: incident.state.value,
        n.T_CAUSE: incident.cause.value,
        n.T_PHASE: phase,
    }
    fields = {
        n.F_INCIDENT_ID: incident.id,
        n.F_OPENED_MS: incident.opened_ms,
        n.F_CLOSED_MS: incident.closed_ms,
        n.F_DURATION_S: None if duration is None else duration / 1000.0,
        n.F_UPSTREAM: incident.upstream,
        n.F_MAINTENANCE: incident.maintenance,
        n.F_OPEN: 0 if phase == n.PHASE_CLOSE else 1,
    }
    return encode_line(n.INCIDENT, tags, fields, ts)


def compliance_point(
    ts_ms: int,
    province: str,
    commune: str | None,
    operating: int,
    required: int,
    goal_percent: float | None = None,
    name: str | None = None,
) -> str:
    """Share of required stations operating, for a commune or (commune=None) the province."""
    if required < 0 or operating < 0:
        raise ValueError(
            f"compliance counts must be >= 0 (operating={operating}, required={required})"
        )
    share = 100.0 * operating / required if required else None
    tags = {
        n.T_PROVINCE: province,
        n.T_COMMUNE: commune,
        n.T_SCOPE: "province" if commune is None else "commune",
    }
    fields = {
        n.F_OPERATING_COUNT: int(operating),
        n.F_REQUIRED_COUNT: int(required),
        n.F_SHARE_PERCENT: share,
        n.F_GOAL_PERCENT: _f(goal_percent),
        n.F_GOAL_MET: None if share is None or goal_percent is None else share >= goal_percent,
        n.F_NAME: name,
    }
    return encode_line(n.COMPLIANCE, tags, fields, ts_ms)


def reject_point(
    ts_ms: int,
    province: str,
    reason: str,
    count: int = 1,
    commune: str | None = None,
    station: str | None = None,
    detail: str | None = None,
) -> str:
    """Messages rejected by ingest in one interval. ``station``/``commune`` only if known to the
    inventory (never an id read from a bad message: unbounded); ``reason`` a fixed vocabulary."""
    if not _REASON.match(reason):
        raise ValueError(f"reject reason {reason!r} must match [a-z0-9_]{{1,40}}")
    tags = {n.T_PROVINCE: province, n.T_COMMUNE: commune, n.T_STATION: station, n.T_REASON: reason}
    fields = {n.F_COUNT: int(count), n.F_DETAIL: detail[:200] if detail else None}
    return encode_line(n.INGEST_REJECT, tags, fields, ts_ms)


def clock_skew_point(ts_ms: int, province: str, commune: str, station: str, skew_ms: int) -> str:
    """Receive time minus message ``ts`` for a live (non-backfill) message, in ms."""
    tags = {n.T_PROVINCE: province, n.T_COMMUNE: commune, n.T_STATION: station}
    return encode_line(n.CLOCK_SKEW, tags, {n.F_SKEW_MS: int(skew_ms)}, ts_ms)


def station_info_point(
    ts_ms: int,
    province: str,
    commune: str,
    station: str,
    *,
    station_name: str,
    commune_name: str,
    lat: float,
    lon: float,
    required: bool,
    position: str,
    technician: str | None = None,
    phone: str | None = None,
) -> str:
    """A station as the inventory describes it (for maps and "who to call" tables). Written at
    start-up and on inventory reload; the latest point per station is the truth."""
    tags = {n.T_PROVINCE: province, n.T_COMMUNE: commune, n.T_STATION: station}
    fields: dict[str, FieldValue | None] = {
        n.F_STATION_NAME: station_name,
        n.F_COMMUNE_NAME: commune_name,
        n.F_LAT: float(lat),
        n.F_LON: float(lon),
        n.F_REQUIRED: bool(required),
        n.F_POSITION: position,
        n.F_TECHNICIAN: technician or None,
        n.F_PHONE: phone or None,
    }
    return encode_line(n.STATION_INFO, tags, fields, ts_ms)


def availability_point(
    ts_ms: int,
    province: str,
    commune: str,
    station: str | None,
    *,
    period_start_ms: int,
    operating_ms: int,
    down_ms: int,
    maintenance_ms: int,
    unknown_ms: int,
    period: str = "month",
) -> str:
    """Availability from ``period_start_ms`` to ``ts_ms``, for a station or (station=None) its
    commune. ``percent`` = operating / (operating + down): maintenance and unknown time are
    reported apart, never counted as up or down; absent when nothing is known."""
    known = operating_ms + down_ms
    tags = {
        n.T_PROVINCE: province,
        n.T_COMMUNE: commune,
        n.T_STATION: station,
        n.T_SCOPE: "commune" if station is None else "station",
        n.T_PERIOD: period,
    }
    fields: dict[str, FieldValue | None] = {
        n.F_PERCENT: 100.0 * operating_ms / known if known > 0 else None,
        n.F_OPERATING_S: operating_ms / 1000.0,
        n.F_DOWN_S: down_ms / 1000.0,
        n.F_MAINTENANCE_S: maintenance_ms / 1000.0,
        n.F_UNKNOWN_S: unknown_ms / 1000.0,
        n.F_PERIOD_START_MS: int(period_start_ms),
    }
    return encode_line(n.AVAILABILITY, tags, fields, ts_ms)
