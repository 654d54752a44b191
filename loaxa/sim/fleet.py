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

Processes: up to ``per_process`` agent stations (default 40) run in this process and their
handles are :class:`~loaxa.sim.station.SimStation` (with ``.mcu`` and ``.agent``). A larger
fleet runs its agent stations in worker processes of ``per_process`` stations each
(:mod:`loaxa.sim.fleet_worker` says why: ``select()`` and 1024 descriptors); their handles are
:class:`~loaxa.sim.fleet_worker.RemoteStation` with the same knobs. Link proxies, RS-485 lines
and the gateway stations' controllers always stay in this process.
"""

from __future__ import annotations

import logging
import resource
import threading
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from collector.inventory import Inventory, load_inventory, parse_inventory
from loaxa.sim.fleet_worker import RemoteStation, Worker, make_station
from loaxa.sim.link_proxy import LinkProxies
from loaxa.sim.mcu import SimulatedMcu
from loaxa.sim.rs485_bus import Rs485Bus
from loaxa.sim.station import SimStation, each, on_air

log = logging.getLogger(__name__)
_DRIVER_TICK_S = 1.0
PER_PROCESS = 40  # agent stations per process: ~15 descriptors each must stay below 1024
Handle = SimStation | RemoteStation
_QUIETED = ("agent", "apscheduler", "loaxa.sim")  # workers copy these loggers' levels


def as_inventory(inventory: Inventory | dict[str, Any] | str | Path) -> Inventory:
    if isinstance(inventory, Inventory):
        return inventory
    if isinstance(inventory, dict):
        return parse_inventory(inventory)
    return load_inventory(inventory)


def _raise_fd_limit() -> None:
    """Proxies use epoll (no 1024 ceiling) but need descriptors: take the hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


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
        per_process: int = PER_PROCESS,
    ) -> None:
        if speed <= 0 or per_process < 1:
            raise ValueError("speed must be > 0 and per_process >= 1")
        self.inventory = as_inventory(inventory)
        self.broker = (broker_host, broker_port)
        self.workdir = Path(workdir)
        self.speed, self.seed, self.per_process = speed, seed, per_process
        self.telemetry_interval_s = max(1.0, interval_s / speed)
        wanted = list(dict.fromkeys(self.inventory.stations if stations is None else stations))
        unknown = [s for s in wanted if s not in self.inventory.stations]
        if unknown:
            raise ValueError(f"stations not in the inventory: {', '.join(unknown[:5])}")
        self.station_ids = wanted  # the stations simulated, in inventory order
        self.links = LinkProxies(broker_host, broker_port)
        self.stations: dict[str, Handle] = {}
        self.buses: dict[str, Rs485Bus] = {}
        self.gateway_urls: dict[str, str] = {}
        self.workers: list[Worker] = []
        self._stop = threading.Event()
        self._driver = threading.Thread(target=self._drive, name="sim-programs", daemon=True)
        self._started = False

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> Fleet:
        """Create and start every station (agents connect at once); returns self."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        _raise_fd_limit()
        self.links.start()
        self._started = True
        try:
            self._start_stations()
        except BaseException:
            self.stop()
            raise
        self._drive_once()
        self._driver.start()
        behind = sum(len(b.mcus) for b in self.buses.values())
        log.info("fleet started: %d stations (%d with agents in %d worker processes, %d behind "
                 "%d serial gateways), telemetry every %g s, speed %g", len(self.stations),
                 len(self.stations) - behind, len(self.workers), behind, len(self.buses),
                 self.telemetry_interval_s, self.speed)  # fmt: skip
        return self

    def _start_stations(self) -> None:
        inv, slug = self.inventory, self.inventory.province.slug
        agents = [s for s in self.station_ids if inv.stations[s].address is None]
        remote = len(agents) > self.per_process
        specs: list[dict[str, Any]] = []
        on_line: dict[str, list[SimulatedMcu]] = {}
        for index, sid in enumerate(self.station_ids):
            station, schedule = inv.stations[sid], inv.schedule_for(sid)
            if station.address is not None:
                handle = make_station(slug, station, schedule, index, 0, self.workdir, 0, 1)
                handle.refresh()
                on_line.setdefault(station.upstream or "", []).append(handle.mcu)
                self.stations[sid] = handle
                continue
            port = self.links.add(sid)
            link = (lambda s=sid: self.links.cut(s), lambda s=sid: self.links.restore(s))
            if not remote:
                handle = make_station(slug, station, schedule, index, port, self.workdir,
                                      self.telemetry_interval_s, self.speed, link)  # fmt: skip
                self.stations[sid] = handle
                continue
            if not specs or len(specs[-1]["stations"]) >= self.per_process:
                specs.append(self._spec())
            specs[-1]["stations"].append(
                {
                    "station": station.model_dump(),
                    "index": index,
                    "schedule": schedule.model_dump(),
                    "port": port,
                }
            )
        for spec in specs:
            worker = Worker(spec)
            self.workers.append(worker)
            for item in spec["stations"]:
                sid = item["station"]["id"]
                link = (lambda s=sid: self.links.cut(s), lambda s=sid: self.links.restore(s))
                self.stations[sid] = RemoteStation(inv.stations[sid], inv.schedule_for(sid),
                                                   worker, link)  # fmt: skip
        each([h for h in self.local_stations() if h.has_agent], "start")
        for worker in self.workers:
            worker.wait_ready()
        for gw_id, mcus in on_line.items():
            bus = Rs485Bus(self.workdir / f"{gw_id}.tty", mcus).start()
            self.buses[gw_id], self.gateway_urls[gw_id] = bus, bus.path

    def _spec(self) -> dict[str, Any]:
        return {"province": self.inventory.province.slug, "tz": self.inventory.province.timezone,
                "workdir": str(self.workdir), "interval_s": self.telemetry_interval_s,
                "speed": self.speed, "log_level": logging.getLogger().level,
                "log_levels": {n: logging.getLogger(n).getEffectiveLevel() for n in _QUIETED},
                "stations": []}  # fmt: skip

    def stop(self) -> None:
        """Stop agents, controllers, workers, lines and proxies; leaves no thread, process,
        pty or socket behind."""
        self._stop.set()
        if self._driver.is_alive():
            self._driver.join(5)
        for worker in self.workers:
            worker.request_stop()
        each([h for h in self.local_stations() if h.has_agent], "stop")
        for worker in self.workers:
            worker.stop()
        for bus in self.buses.values():
            bus.stop()
        if self._started:
            self.links.stop()
            self._started = False

    def __enter__(self) -> Fleet:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- program driver (stations in this process; workers drive their own) -----------------
    def _drive(self) -> None:
        while not self._stop.wait(_DRIVER_TICK_S):
            try:
                self._drive_once()
            except Exception:  # a driver bug must be seen, not end the simulation
                log.exception("program driver failed")

    def _drive_once(self) -> None:
        local = datetime.now(self.inventory.province.tz)
        for handle in self.local_stations():
            handle.set_on_air(on_air(handle.schedule, local))

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Every station's state (SimStation.snapshot), for logs and demo views."""
        return {sid: handle.snapshot() for sid, handle in list(self.stations.items())}

    # -- views --------------------------------------------------------------------------------
    def local_stations(self) -> list[SimStation]:
        return [h for h in list(self.stations.values()) if isinstance(h, SimStation)]

    def agent_stations(self) -> list[Handle]:
        return [h for h in self.stations.values() if h.has_agent]

    def gateway_stations(self, gw_id: str) -> list[Handle]:
        return [h for h in self.stations.values() if h.station.upstream == gw_id
                and not h.has_agent]  # fmt: skip
