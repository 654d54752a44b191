"""A fleet of simulated stations speaking the real agent code paths to a real broker.

For every inventory station with its own agent: a :class:`~loaxa.sim.mcu.SimulatedMcu` on a
real pty, and the REAL :class:`agent.service.AgentService` (its own config, offline queue and
state under ``workdir/<station>/``) connected to the broker through a per-station TCP proxy
(:mod:`loaxa.sim.link_proxy`) that the fault models cut to simulate a lost 3G/4G link.
Stations behind a serial gateway (``upstream`` = a serial_gateway, with an RS-485 ``address``)
have no agent: their controllers (``SimulatedMcu(rs485=True)``) share one simulated line per
gateway (:mod:`loaxa.sim.rs485_bus`) whose pty path, ``fleet.gateway_urls[gw_id]``, a
collector's ``[[serial_gateways]]`` url points at.

A program driver (one thread) opens and closes each station's broadcast windows by the REAL
local clock (Asia/Ho_Chi_Minh) and its schedule, so the collector's schedule logic agrees.

What ``speed`` means: simulated time runs ``speed`` times faster than wall-clock time for the
things the simulator controls: the agents' telemetry interval is ``interval_s / speed``
(at least 1 s, the agent's minimum), the agents' reconnect back-off is capped at
``60 s / speed`` (at least 1 s), and fault plans (:mod:`loaxa.sim.faults`) are laid out in
simulated seconds and applied at ``start + at_s / speed`` (so a 2 h power cut lasts 2 min at
speed 60). Timestamps in messages are always real wall-clock time (the collector must accept
them), and broadcast windows follow the real clock. A collector watching a sped-up fleet
should be told the shorter interval (inventory ``defaults.telemetry_interval_s``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from agent.config import AgentConfig, parse_config
from collector.inventory import Inventory, Schedule, load_inventory, parse_inventory
from loaxa.sim.link_proxy import LinkProxies
from loaxa.sim.mcu import SimulatedMcu
from loaxa.sim.rs485_bus import Rs485Bus
from loaxa.sim.station import SimStation

log = logging.getLogger(__name__)
_DRIVER_TICK_S = 1.0


def as_inventory(inventory: Inventory | dict[str, Any] | str | Path) -> Inventory:
    if isinstance(inventory, Inventory):
        return inventory
    if isinstance(inventory, dict):
        return parse_inventory(inventory)
    return load_inventory(inventory)


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


class Fleet:
    def __init__(
        self,
        inventory: Inventory | dict[str, Any] | str | Path,
        broker_host: str,
        broker_port: int,
        workdir: str | Path,
        *,
        interval_s: float = 60.0,
        speed: float = 1.0,
        seed: int = 0,
        stations: Iterable[str] | None = None,
    ) -> None:
        if speed <= 0:
            raise ValueError("speed must be > 0")
        self.inventory = as_inventory(inventory)
        self.broker = (broker_host, broker_port)
        self.workdir = Path(workdir)
        self.speed, self.seed = speed, seed
        self.telemetry_interval_s = max(1.0, interval_s / speed)
        wanted = list(dict.fromkeys(self.inventory.stations if stations is None else stations))
        unknown = [s for s in wanted if s not in self.inventory.stations]
        if unknown:
            raise ValueError(f"stations not in the inventory: {', '.join(unknown[:5])}")
        self.links = LinkProxies(broker_host, broker_port)
        self.stations: dict[str, SimStation] = {}
        self.buses: dict[str, Rs485Bus] = {}
        self.gateway_urls: dict[str, str] = {}
        self.station_ids = wanted  # the stations simulated, in inventory order
        self._stop = threading.Event()
        self._driver = threading.Thread(target=self._drive, name="sim-programs", daemon=True)
        self._started = False

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> Fleet:
        """Create and start every station (agents connect at once); returns self."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.links.start()
        self._started = True
        on_line: dict[str, list[SimulatedMcu]] = {}
        try:
            for index, station_id in enumerate(self.station_ids):
                handle = self._build(station_id, index)
                self.stations[station_id] = handle
                if handle.agent_config is None:
                    handle.refresh()
                    on_line.setdefault(handle.station.upstream or "", []).append(handle.mcu)
                else:
                    handle.start()
            for gw_id, mcus in on_line.items():
                bus = Rs485Bus(self.workdir / f"{gw_id}.tty", mcus).start()
                self.buses[gw_id], self.gateway_urls[gw_id] = bus, bus.path
        except BaseException:
            self.stop()
            raise
        self._drive_once()
        self._driver.start()
        log.info("fleet started: %d stations (%d with agents, %d behind %d serial gateways), "
                 "telemetry every %g s, speed %g", len(self.stations),
                 len(self.stations) - sum(len(b.mcus) for b in self.buses.values()),
                 sum(len(b.mcus) for b in self.buses.values()), len(self.buses),
                 self.telemetry_interval_s, self.speed)  # fmt: skip
        return self

    def stop(self) -> None:
        """Stop agents, controllers, lines and proxies; leaves no thread, pty or socket behind."""
        self._stop.set()
        if self._driver.is_alive():
            self._driver.join(5)
        for handle in self.stations.values():
            if handle.agent_config is not None:
                try:
                    handle.stop()
                except Exception:  # one stuck station must not keep the rest running
                    log.exception("stopping station %s", handle.id)
        for bus in self.buses.values():
            bus.stop()
        if self._started:
            self.links.stop()
            self._started = False

    def __enter__(self) -> Fleet:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- building -----------------------------------------------------------------------------
    def _build(self, station_id: str, index: int) -> SimStation:
        station = self.inventory.stations[station_id]
        schedule = self.inventory.schedule_for(station_id)
        home = self.workdir / station_id
        home.mkdir(parents=True, exist_ok=True)
        rs485 = station.address is not None
        mcu = SimulatedMcu(
            station.address or 1, path=home / "tty", rs485=rs485,
            device_id=(0x4C000000 + index) & 0xFFFFFFFF,
        )  # fmt: skip
        if rs485:
            return SimStation(station, schedule, mcu, None)
        port = self.links.add(station_id)
        config = self._agent_config(station_id, station.commune, port, mcu.path, home)
        links = (lambda: self.links.cut(station_id), lambda: self.links.restore(station_id))
        return SimStation(station, schedule, mcu, config, links)

    def _agent_config(
        self, station_id: str, commune: str, port: int, tty: str, home: Path
    ) -> AgentConfig:
        interval = self.telemetry_interval_s
        retry_max = max(1.0, 60.0 / self.speed)
        return parse_config({
            "station": {"id": station_id, "province": self.inventory.province.slug,
                        "commune": commune},
            "mqtt": {"host": "127.0.0.1", "port": port, "retry_min_s": min(1.0, retry_max),
                     "retry_max_s": retry_max, "keepalive_s": 30},
            "controller": {"url": tty, "poll_interval_s": max(0.5, min(5.0, interval / 2)),
                           "reopen_interval_s": 1.0},
            "telemetry": {"interval_s": interval},
            "state": {"dir": str(home / "state")},
        }, f"<simulated {station_id}>")  # fmt: skip

    # -- program driver -----------------------------------------------------------------------
    def _drive(self) -> None:
        while not self._stop.wait(_DRIVER_TICK_S):
            try:
                self._drive_once()
            except Exception:  # a driver bug must be seen, not end the simulation
                log.exception("program driver failed")

    def _drive_once(self) -> None:
        local = datetime.now(self.inventory.province.tz)
        for handle in list(self.stations.values()):
            handle.set_on_air(on_air(handle.schedule, local))

    # -- views --------------------------------------------------------------------------------
    def agent_stations(self) -> list[SimStation]:
        return [h for h in self.stations.values() if h.agent_config is not None]

    def gateway_stations(self, gw_id: str) -> list[SimStation]:
        return [h for h in self.stations.values() if h.station.upstream == gw_id
                and h.agent_config is None]  # fmt: skip
