"""Worker processes for large fleets, and the parent's handle of a station living in one.

Why: pyserial, paho-mqtt and SimulatedMcu wait with ``select()``, which cannot watch a file
descriptor numbered 1024 or more, and each simulated station holds about 15 (pty pair, the
agent's serial port and its abort pipes, SQLite queue, MQTT socket and wake-up pair). So one
process holds at most ~60 stations; :class:`~loaxa.sim.fleet.Fleet` puts ``per_process``
agent stations in each worker (``multiprocessing`` "spawn": no threads forked).

Protocol (version 1, over a ``multiprocessing`` Pipe, parent -> worker):
``(station_id, method, args)`` calls that :class:`~loaxa.sim.station.SimStation` method and
answers ``("ok", result)`` or ``("err", text)``; ``None`` stops the worker, which stops its
stations and answers ``("stopped", None)``. The worker first sends ``("ready", None)`` or
``("err", text)``. Links stay in the parent (its proxies), so a link cut needs no message.
The worker is ``python -m loaxa.sim.fleet_worker FD`` (a socketpair end; the first message is
the spec): unlike multiprocessing's spawn, it never re-imports the caller's main script. It
ignores SIGINT (Ctrl-C is the parent's to handle) and stops by itself when the parent is gone.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import subprocess
import sys
import threading
from datetime import datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from agent.config import AgentConfig, parse_config
from collector.inventory import Schedule, Station
from loaxa.sim.mcu import SimulatedMcu
from loaxa.sim.station import SimStation, each, on_air

log = logging.getLogger(__name__)
_TIMEOUT_S = 60.0


def agent_config(province: str, station: Station, port: int, tty: str, home: Path,
                 interval_s: float, speed: float) -> AgentConfig:  # fmt: skip
    """The agent config of a simulated station: broker via its link proxy on ``port``."""
    retry_max = max(1.0, 60.0 / speed)
    return parse_config({
        "station": {"id": station.id, "province": province, "commune": station.commune},
        "mqtt": {"host": "127.0.0.1", "port": port, "retry_min_s": min(1.0, retry_max),
                 "retry_max_s": retry_max, "keepalive_s": 30},
        "controller": {"url": tty, "poll_interval_s": max(1.0, min(5.0, interval_s)),
                       "reopen_interval_s": 1.0},
        "telemetry": {"interval_s": interval_s},
        "state": {"dir": str(home / "state")},
    }, f"<simulated {station.id}>")  # fmt: skip


def make_station(
    province: str,
    station: Station,
    schedule: Schedule,
    index: int,
    port: int,
    workdir: Path,
    interval_s: float,
    speed: float,
    link=None,
) -> SimStation:
    home = workdir / station.id
    home.mkdir(parents=True, exist_ok=True)
    mcu = SimulatedMcu(station.address or 1, path=home / "tty", rs485=station.address is not None,
                       device_id=(0x4C000000 + index) & 0xFFFFFFFF)  # fmt: skip
    if station.address is not None:
        return SimStation(station, schedule, mcu, None)
    config = agent_config(province, station, port, mcu.path, home, interval_s, speed)
    return SimStation(station, schedule, mcu, config, link)


def worker_main(conn: Connection, spec: dict[str, Any]) -> None:
    """Entry point of a worker process (see the module docstring for the protocol)."""
    logging.basicConfig(level=spec["log_level"],
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")  # fmt: skip
    for name, level in spec.get("log_levels", {}).items():  # the parent's quieted loggers
        logging.getLogger(name).setLevel(level)
    stations: dict[str, SimStation] = {}
    stop = threading.Event()
    try:
        for item in spec["stations"]:
            handle = make_station(
                spec["province"],
                Station(**item["station"]),
                Schedule(**item["schedule"]),
                item["index"],
                item["port"],
                Path(spec["workdir"]),
                spec["interval_s"],
                spec["speed"],
            )
            stations[handle.id] = handle
        each(stations.values(), "start")
        driver = threading.Thread(target=_drive, args=(stations, ZoneInfo(spec["tz"]), stop),
                                  name="sim-programs", daemon=True)  # fmt: skip
        driver.start()
        conn.send(("ready", None))
        _serve(conn, stations)
    except Exception as err:
        log.exception("fleet worker failed")
        conn.send(("err", repr(err)))
    finally:
        stop.set()
        each(stations.values(), "stop")
        with contextlib.suppress(OSError):  # the parent may be gone
            conn.send(("stopped", None))


def _serve(conn: Connection, stations: dict[str, SimStation]) -> None:
    while True:
        try:
            msg = conn.recv()
        except EOFError:
            return
        if msg is None:
            return
        station_id, method, args = msg
        try:
            conn.send(("ok", getattr(stations[station_id], method)(*args)))
        except Exception as err:  # a bad call is answered, never fatal to the worker
            conn.send(("err", f"{method} on {station_id}: {err!r}"))


def _drive(stations: dict[str, SimStation], tz: ZoneInfo, stop: threading.Event) -> None:
    while True:
        local = datetime.now(tz)
        for handle in stations.values():
            try:
                handle.set_on_air(on_air(handle.schedule, local))
            except Exception:
                log.exception("program driver failed for %s", handle.id)
        if stop.wait(1.0):
            return


class Worker:
    """Parent side of one worker process."""

    def __init__(self, spec: dict[str, Any]) -> None:
        mine, theirs = socket.socketpair()
        with theirs:
            fd = theirs.fileno()
            self.process = subprocess.Popen(
                [sys.executable, "-m", "loaxa.sim.fleet_worker", str(fd)], pass_fds=[fd]
            )
        self._conn = Connection(mine.detach())
        self._lock = threading.Lock()
        self._stopping = False
        self._conn.send(spec)

    def wait_ready(self) -> None:
        status, detail = self._recv()
        if status != "ready":
            raise RuntimeError(f"fleet worker failed to start: {detail}")

    def _recv(self) -> tuple[str, Any]:
        if not self._conn.poll(_TIMEOUT_S):
            raise TimeoutError("fleet worker did not answer")
        return self._conn.recv()

    def call(self, station_id: str, method: str, *args: Any) -> Any:
        with self._lock:
            self._conn.send((station_id, method, args))
            status, result = self._recv()
        if status != "ok":
            raise RuntimeError(result)
        return result

    def request_stop(self) -> None:
        """Ask the worker to stop its stations (returns at once; ``stop()`` waits)."""
        if self._stopping:
            return
        self._stopping = True
        with self._lock:
            try:
                self._conn.send(None)
            except OSError as err:
                log.warning("fleet worker gone: %s", err)

    def stop(self) -> None:
        self.request_stop()
        with self._lock:
            try:
                while self._recv()[0] != "stopped":
                    pass
            except (OSError, EOFError, TimeoutError) as err:
                log.warning("fleet worker did not stop cleanly: %s", err)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        self._conn.close()


class RemoteStation:
    """A station in a worker process: the same knobs as SimStation (no ``mcu``/``agent``
    objects here); its link cut/restore acts on the parent's proxy directly."""

    has_agent = True
    mcu = None
    agent = None

    def __init__(self, station: Station, schedule: Schedule, worker: Worker, link) -> None:
        self.station, self.schedule, self.id = station, schedule, station.id
        self._worker = worker
        self._cut, self._restore = link
        self.link_down_causes: set[str] = set()

    def link_down(self, cause: str) -> None:
        if not self.link_down_causes:
            self._cut()
        self.link_down_causes.add(cause)

    def link_up(self, cause: str) -> None:
        self.link_down_causes.discard(cause)
        if not self.link_down_causes:
            self._restore()

    def power_flat(self) -> None:
        self.link_down("power")  # dark: the broker sees the link drop
        self._worker.call(self.id, "power_flat")

    def power_restored(self) -> bool:
        back = bool(self._worker.call(self.id, "power_restored"))
        if back:
            self.link_up("power")
        return back

    def snapshot(self) -> dict[str, Any]:
        snap = self._worker.call(self.id, "snapshot")
        snap["link_down"] = sorted(self.link_down_causes)
        return snap

    def __getattr__(self, method: str):
        if method in ("power_lost", "battery_low", "set_amp_fault", "set_stuck_source",
                      "set_door", "set_clock_offset"):  # fmt: skip
            return lambda *args: self._worker.call(self.id, method, *args)
        raise AttributeError(method)


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    channel = Connection(int(sys.argv[1]))
    worker_main(channel, channel.recv())
