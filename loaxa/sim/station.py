"""One simulated station: its controller (SimulatedMcu on a pty), its real agent (AgentService,
unless it sits behind a serial gateway) and the knobs the fault models turn.

State that several faults can touch at once is kept as sets of causes, so overlapping faults
compose: the link is down while any cause holds it down (a 3G outage during a power cut),
the controller is dark while its battery is flat, audio is silent while the source is stuck.
Readings are recomputed from that state on every change (:meth:`SimStation.refresh`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from agent.config import AgentConfig
from agent.service import AgentService
from collector.inventory import Schedule, Station
from firmware_protocol import AmpState, ClusterFlag, ClusterRecord, EventCode, Source
from loaxa.sim.mcu import SimulatedMcu

log = logging.getLogger(__name__)
_KIND = {"wired": 0, "fm": 1, "ip": 2}
ON_AIR_DBFS, STUCK_DBFS, IDLE_DBFS = -18.0, -72.0, -85.0  # feed level on air / stuck / off air
MAINS_V, BATTERY_FULL_V, BATTERY_ON_V, BATTERY_LOW_V, BATTERY_FLAT_V = 221.0, 13.6, 12.6, 11.3, 10.4


def each(handles: Iterable[SimStation], method: str, threads: int = 16) -> None:
    """Call ``method`` on every handle, ``threads`` at a time (starting or stopping an agent
    waits on its threads; one by one, 40 stations take ~40 s). Failures are logged."""

    def call(handle: SimStation) -> None:
        try:
            getattr(handle, method)()
        except Exception:  # one broken station must not stop the others
            log.exception("%s of station %s failed", method, handle.id)

    with ThreadPoolExecutor(threads, thread_name_prefix=f"sim-{method}") as pool:
        list(pool.map(call, handles))


def on_air(schedule: Schedule, local: datetime) -> bool:
    """Is ``local`` (a local wall time) inside one of the schedule's daily windows?"""
    if schedule.always:
        return True
    minute = local.hour * 60 + local.minute
    for window in schedule.windows:
        start, end = (int(t[:2]) * 60 + int(t[3:]) for t in window.split("-"))
        inside = start <= minute < end if start < end else (minute >= start or minute < end)
        if inside:
            return True
    return False


class SimStation:
    """Handle of one station in a :class:`~loaxa.sim.fleet.Fleet` (``fleet.stations[id]``)."""

    def __init__(
        self,
        station: Station,
        schedule: Schedule,
        mcu: SimulatedMcu,
        agent_config: AgentConfig | None,
        link: tuple[Callable[[], None], Callable[[], None]] | None = None,
    ) -> None:
        self.station, self.schedule, self.mcu = station, schedule, mcu
        self.id = station.id
        self.agent_config = agent_config  # None: behind a serial gateway, no agent of its own
        self.agent: AgentService | None = None
        self._link_cut, self._link_restore = link or (lambda: None, lambda: None)
        self._lock = threading.RLock()
        self.link_down_causes: set[str] = set()
        self.on_battery = False
        self.power_cuts = 0  # overlapping cuts in force (a storm's and the grid's)
        self.battery_v = BATTERY_FULL_V
        self.flat = False
        self.amp_fault = False
        self.stuck_source = False
        self.door_open = False
        self.on_air = False
        self.clock_offset_ms = 0

    @property
    def has_agent(self) -> bool:
        return self.agent_config is not None

    # -- lifecycle (Fleet) --------------------------------------------------------------------
    def start(self) -> None:
        self.refresh()
        self.mcu.start()
        self._start_agent()

    def stop(self) -> None:
        self._stop_agent()
        self.mcu.stop()

    def _start_agent(self) -> None:
        if self.agent_config is None or self.agent is not None:
            return
        agent = AgentService(self.agent_config)
        publish = agent.publisher.publish

        def shifted(kind: Any, fields: dict[str, Any], ts_ms: int) -> None:
            # A reset clock shifts every timestamp the agent takes (clock_reset fault).
            off = self.clock_offset_ms
            if off:
                fields = {k: (v + off if k in ("start_ts", "end_ts") and v else v)
                          for k, v in fields.items()}  # fmt: skip
            publish(kind, fields, max(0, ts_ms + off))

        agent.publisher.publish = shifted  # type: ignore[method-assign]
        agent.start()
        self.agent = agent

    def _stop_agent(self) -> None:
        agent, self.agent = self.agent, None
        if agent is not None:
            agent.stop()

    # -- readings -----------------------------------------------------------------------------
    def refresh(self) -> None:
        """Recompute what the controller reports from the station's state."""
        with self._lock:
            sounding = self.on_air and not self.flat
            level = (STUCK_DBFS if self.stuck_source else ON_AIR_DBFS) if sounding else IDLE_DBFS
            amp = AmpState.FAULT if self.amp_fault else (AmpState.ON if sounding else AmpState.OFF)
            relay = ClusterFlag.RELAY_ON if sounding else 0
            clusters = tuple(
                ClusterRecord(i, _KIND[kind], int(relay | ClusterFlag.FEED_OK), round(level) - 2)
                for i, kind in enumerate(self.station.clusters)
            )
            fm = "fm" in self.station.clusters and sounding and not self.amp_fault
            self.mcu.set_readings(
                amp=amp, audio_rms_dbfs=level, audio_peak_dbfs=min(0.0, level + 12),
                mains_v=None if self.on_battery else MAINS_V, battery_v=self.battery_v,
                on_battery=self.on_battery, door_open=self.door_open, clusters=clusters,
                fm_forward_w=48.0 if fm else None, fm_reflected_w=1.2 if fm else None,
            )  # fmt: skip

    def set_on_air(self, on_air: bool) -> None:
        """Program driver: a broadcast window opened or closed (PLAYBACK start/stop)."""
        with self._lock:
            if on_air == self.on_air:
                return
            self.on_air = on_air
            self.refresh()
            if self.flat:
                return
            mask = (1 << len(self.station.clusters)) - 1 or 1
            source = Source.FM_REBROADCAST if self.schedule.always else Source.PROVINCIAL_RELAY
            if on_air:
                self.mcu.start_program(source, cluster_mask=mask)
            else:
                self.mcu.stop_program(source, cluster_mask=mask)

    # -- knobs (fault models) -----------------------------------------------------------------
    def link_down(self, cause: str) -> None:
        with self._lock:
            if not self.link_down_causes:
                self._link_cut()
            self.link_down_causes.add(cause)

    def link_up(self, cause: str) -> None:
        with self._lock:
            self.link_down_causes.discard(cause)
            if not self.link_down_causes:
                self._link_restore()

    def power_lost(self) -> None:
        """Mains gone (cuts may overlap: mains returns when the last one ends)."""
        with self._lock:
            self.power_cuts += 1
            if self.power_cuts > 1:
                return
            self.on_battery, self.battery_v = True, BATTERY_ON_V
            self.refresh()
            self.mcu.emit_event(EventCode.POWER_LOST)

    def battery_low(self) -> None:
        with self._lock:
            if self.on_battery and not self.flat:
                self.battery_v = BATTERY_LOW_V
                self.refresh()
                self.mcu.emit_event(EventCode.BATTERY_LOW, value=int(BATTERY_LOW_V * 1000))

    def power_flat(self) -> None:
        """The battery ran flat: controller and agent go dark (the broker sees the link drop)."""
        with self._lock:
            if not self.on_battery or self.flat:
                return
            self.flat, self.battery_v = True, BATTERY_FLAT_V
            self.link_down("power")
            self.mcu.mute(True)
        self._stop_agent()  # outside the lock: stopping waits for the agent's threads

    def power_restored(self) -> bool:
        """One cut ended; True when mains is back (no other cut in force)."""
        with self._lock:
            self.power_cuts = max(0, self.power_cuts - 1)
            if self.power_cuts:
                return False
            was_flat = self.flat
            self.on_battery, self.flat, self.battery_v = False, False, BATTERY_FULL_V
            self.refresh()
            self.mcu.mute(False)
        if was_flat:
            self._start_agent()  # the controller box boots again: new session, same seq line
            self.link_up("power")
            self.mcu.emit_event(EventCode.REBOOT)
        self.mcu.emit_event(EventCode.POWER_RESTORED)
        return True

    def set_amp_fault(self, fault: bool) -> None:
        with self._lock:
            if fault == self.amp_fault:
                return
            self.amp_fault = fault
            self.refresh()
            self.mcu.emit_event(EventCode.AMP_FAULT if fault else EventCode.AMP_RECOVERED)

    def set_stuck_source(self, stuck: bool) -> None:
        with self._lock:
            self.stuck_source = stuck
            self.refresh()

    def set_door(self, open_: bool) -> None:
        with self._lock:
            if open_ == self.door_open:
                return
            self.door_open = open_
            self.refresh()
            self.mcu.emit_event(EventCode.DOOR_OPEN if open_ else EventCode.DOOR_CLOSED)

    def set_clock_offset(self, offset_s: float) -> None:
        self.clock_offset_ms = int(offset_s * 1000)

    def snapshot(self) -> dict[str, Any]:
        """State for logs and demo views."""
        pub = self.agent.publisher.snapshot() if self.agent else {}
        return {
            "station": self.id, "link_down": sorted(self.link_down_causes),
            "on_battery": self.on_battery, "flat": self.flat, "amp_fault": self.amp_fault,
            "stuck_source": self.stuck_source, "door_open": self.door_open,
            "on_air": self.on_air, "clock_offset_ms": self.clock_offset_ms,
            "queued": pub.get("queued", 0), "connected": pub.get("connected", False),
        }  # fmt: skip
