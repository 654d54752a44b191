"""Controller protocol messages (firmware_protocol, v1) -> payload fields (loaxa.payloads, v1).

The functions return plain dicts: keyword arguments for the payload models minus the envelope
(station/session/seq/ts/backfill), which the Publisher adds. A reading outside the range the
payload schema allows (a confused MCU) becomes None with a warning and a count, so one bad
field never loses the whole telemetry message.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import TYPE_CHECKING, Any

from firmware_protocol.enums import AmpState as McuAmp
from firmware_protocol.enums import ClusterKind as McuClusterKind
from firmware_protocol.enums import EventCode as McuEventCode
from firmware_protocol.enums import Priority as McuPriority
from firmware_protocol.enums import Source as McuSource
from firmware_protocol.enums import known
from loaxa.payloads import AmpState, ClusterKind, EventCode, Priority, ProgramSource

if TYPE_CHECKING:
    from agent.acoustic import AcousticResult
    from agent.audio import AudioLevels
    from firmware_protocol.messages import Event, Hello, Playback, Telemetry

log = logging.getLogger(__name__)
rejected: Counter[str] = Counter()  # field name -> readings dropped as out of range

_AMP = {
    McuAmp.OFF: AmpState.OFF,
    McuAmp.ON: AmpState.ON,
    McuAmp.FAULT: AmpState.FAULT,
    McuAmp.PROTECT: AmpState.PROTECT,
}
_CLUSTER_KIND = {
    McuClusterKind.WIRED: ClusterKind.WIRED,
    McuClusterKind.FM: ClusterKind.FM,
    McuClusterKind.IP: ClusterKind.IP,
}
_SOURCE = {
    McuSource.OTHER: ProgramSource.OTHER,
    McuSource.PROVINCIAL_RELAY: ProgramSource.PROVINCIAL_RELAY,
    McuSource.NATIONAL_RELAY: ProgramSource.NATIONAL_RELAY,
    McuSource.LOCAL_BULLETIN: ProgramSource.LOCAL_BULLETIN,
    McuSource.FM_REBROADCAST: ProgramSource.FM_REBROADCAST,
}
_PRIORITY = {
    McuPriority.NORMAL: Priority.NORMAL,
    McuPriority.PRIORITY: Priority.PRIORITY,
    McuPriority.EMERGENCY: Priority.EMERGENCY,
}
# MCU event codes -> payload codes; the names match by design (SPEC.md EVENT table).
_EVENT = {code: EventCode(code.name.lower()) for code in McuEventCode}
# Codes whose `value` means something (SPEC.md EVENT table); others send no value.
_EVENT_HAS_VALUE = {McuEventCode.BATTERY_LOW, McuEventCode.OVER_TEMPERATURE, McuEventCode.REBOOT}


def checked(name: str, value: float | None, low: float, high: float, digits: int = 2):
    """``value`` rounded, or None (logged and counted) when outside [low, high]."""
    if value is None:
        return None
    if not low <= value <= high:
        rejected[name] += 1
        log.warning("controller reported %s=%s, outside %s..%s; dropped", name, value, low, high)
        return None
    return round(value, digits)


def audio_fields(
    mcu: Telemetry | None, levels: AudioLevels | None, acoustic: AcousticResult | None = None
) -> dict[str, Any]:
    """The ``audio`` object: measured levels when given, else the MCU's report, else none."""
    if levels is not None and levels.source == "mcu" and mcu is None:
        levels = None  # the MCU's level is only current while the controller answers
    if levels is not None and levels.rms_dbfs is not None:
        audio: dict[str, Any] = {
            "rms_dbfs": checked("audio.rms_dbfs", levels.rms_dbfs, -200, 0),
            "peak_dbfs": checked("audio.peak_dbfs", levels.peak_dbfs, -200, 0),
            "clip_ratio": round(min(1.0, max(0.0, levels.clip_ratio)), 4),
            "silent": levels.silent,
            "source": levels.source,
        }
    elif mcu is not None and mcu.audio_rms_dbfs is not None:
        audio = {
            "rms_dbfs": checked("audio.rms_dbfs", mcu.audio_rms_dbfs, -200, 0),
            "peak_dbfs": checked("audio.peak_dbfs", mcu.audio_peak_dbfs, -200, 0),
            "silent": bool(levels and levels.silent),
            "source": "mcu",
        }
    else:
        audio = {"source": "none"}
    if acoustic is not None:
        audio["acoustic_dbfs"] = checked("audio.acoustic_dbfs", acoustic.level_dbfs, -200, 0)
        audio["acoustic_corr"] = checked("audio.acoustic_corr", acoustic.correlation, -1, 1, 3)
    return audio


def cluster_fields(mcu: Telemetry) -> list[dict[str, Any]]:
    clusters = []
    for record in mcu.clusters:
        kind = _CLUSTER_KIND.get(record.kind_enum)  # type: ignore[arg-type]
        if kind is None:
            rejected["clusters.kind"] += 1
            log.warning("cluster %d has unknown kind %d; left out", record.id, record.kind)
            continue
        clusters.append(
            {
                "id": record.id,
                "kind": kind.value,
                "relay_on": record.relay_on,
                "fault": record.fault,
                "feed_ok": record.feed_ok,
                "rms_dbfs": checked("clusters.rms_dbfs", record.rms_dbfs, -200, 0),
            }
        )
    return clusters


def telemetry_fields(
    mcu: Telemetry | None,
    levels: AudioLevels | None,
    agent_uptime_s: int,
    controller_ok: bool,
    *,
    acoustic: AcousticResult | None = None,
) -> dict[str, Any]:
    """Keyword args for ``loaxa.payloads.Telemetry`` minus the envelope."""
    fields: dict[str, Any] = {
        "controller": "ok" if controller_ok else "unreachable",
        "agent_uptime_s": max(0, int(agent_uptime_s)),
        "audio": audio_fields(mcu if controller_ok else None, levels, acoustic),
    }
    if mcu is None or not controller_ok:
        return fields  # stale MCU readings are not reported as current
    fields["uptime_s"] = mcu.uptime_s
    fields["amp"] = _AMP.get(mcu.amp, AmpState.UNKNOWN).value  # type: ignore[arg-type]
    fields["power"] = {
        "mains_v": checked("power.mains_v", mcu.mains_v, 0, 500, 1),
        "battery_v": checked("power.battery_v", mcu.battery_v, 0, 100, 3),
        "on_battery": mcu.on_battery,
    }
    fields["temp_c"] = checked("temp_c", mcu.temperature_c, -60, 150)
    forward = checked("fm.forward_w", mcu.fm_forward_w, 0, 10000, 1)
    reflected = checked("fm.reflected_w", mcu.fm_reflected_w, 0, 10000, 1)
    if forward is not None and reflected is not None:
        fields["fm"] = {"forward_w": forward, "reflected_w": reflected}
    fields["clusters"] = cluster_fields(mcu)
    return fields


def event_fields(ev: Event) -> dict[str, Any]:
    """Keyword args for ``loaxa.payloads.Event`` minus the envelope; unknown codes keep raw."""
    code = known(McuEventCode, ev.code)
    fields: dict[str, Any] = {
        "code": _EVENT[code].value if code is not None else EventCode.UNKNOWN.value,
        "raw_code": ev.code,
        "cluster": None if ev.station_wide else ev.cluster,
        "origin": "mcu",
    }
    if code is None or code in _EVENT_HAS_VALUE:
        fields["value"] = ev.value
    return fields


def agent_event_fields(code: EventCode, value: int | None = None) -> dict[str, Any]:
    """An event the agent itself raises (controller_lost/found, queue_evicted)."""
    return {"code": EventCode(code).value, "value": value, "origin": "agent"}


def program_source(pb: Playback) -> ProgramSource:
    return _SOURCE.get(pb.source_enum, ProgramSource.OTHER)  # type: ignore[arg-type]


def program_priority(pb: Playback) -> Priority:
    priority = _PRIORITY.get(pb.priority_enum)  # type: ignore[arg-type]
    if priority is None:
        rejected["playback.priority"] += 1
        log.warning("PLAYBACK has unknown priority %d; reported as normal", pb.priority)
        return Priority.NORMAL
    return priority


def device_info(hello: Hello) -> dict[str, Any]:
    """Keyword args for ``Publisher.set_device_info``."""
    return {
        "firmware": hello.firmware_version,
        "hardware": f"rev{hello.hw_rev}",
        "device_id": hello.device_id,
    }
