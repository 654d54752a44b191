"""A simulated RS-485 multi-drop line: one pty for the collector's serial gateway (the master,
address 0), several :class:`~loaxa.sim.mcu.SimulatedMcu` (``rs485=True``) on it.

SimulatedMcu owns one pty per controller; the bus joins them the way the twisted pair does:
every byte the master sends reaches every controller (each answers only its own address,
FP-LINK-1), and whatever a controller sends reaches the master. Controllers in rs485 mode speak
only when polled (FP-LINK-3/4), so their answers never overlap. ``fail()`` makes the line dead
(a failed gateway modem or cut cable): bytes are dropped both ways until ``repair()``.

The master opens ``.path`` (a symlink to the pty's slave side) like /dev/ttyUSB0.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import threading
import tty
from pathlib import Path

from loaxa.sim.mcu import SimulatedMcu

log = logging.getLogger(__name__)
_TICK_S = 0.05


class Rs485Bus:
    def __init__(self, path: str | Path, mcus: list[SimulatedMcu]) -> None:
        if len({m.address for m in mcus}) != len(mcus):
            raise ValueError("two controllers on one line share an address")
        if not all(m.rs485 for m in mcus):
            raise ValueError("controllers on a bus must be SimulatedMcu(rs485=True)")
        self.path = str(path)
        self.mcus = list(mcus)
        self.failed = False
        self.counts = {"to_devices": 0, "to_master": 0, "dropped": 0}
        self._master: int | None = None
        self._slave: int | None = None
        self._taps: dict[int, SimulatedMcu] = {}  # our fd on each controller's pty -> controller
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sim-rs485", daemon=True)

    def start(self) -> Rs485Bus:
        """Start the controllers (if not yet), open the line, start forwarding."""
        for mcu in self.mcus:
            if mcu._thread is None:  # not started yet
                mcu.start()
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        os.set_blocking(self._master, False)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        os.symlink(os.ttyname(self._slave), self.path)
        for mcu in self.mcus:
            fd = os.open(mcu.path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
            tty.setraw(fd)
            self._taps[fd] = mcu
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
        for fd in [*self._taps, self._master, self._slave]:
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._taps.clear()
        self._master = self._slave = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        for mcu in self.mcus:
            mcu.stop()

    def fail(self) -> None:
        self.failed = True

    def repair(self) -> None:
        self.failed = False

    def _run(self) -> None:
        assert self._master is not None
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self._master, *self._taps], [], [], _TICK_S)
            except (OSError, ValueError):
                return  # closed by stop()
            for fd in ready:
                try:
                    data = os.read(fd, 4096)
                except OSError:
                    continue
                if self.failed:
                    self.counts["dropped"] += len(data)
                elif fd == self._master:
                    self.counts["to_devices"] += len(data)
                    for tap in self._taps:
                        self._write(tap, data)
                else:
                    self.counts["to_master"] += len(data)
                    self._write(self._master, data)

    @staticmethod
    def _write(fd: int, data: bytes) -> None:
        try:
            os.write(fd, data)
        except OSError as err:  # buffer full (nobody reading): the line loses it, as RS-485 would
            log.debug("rs485 bus write failed: %s", err)
