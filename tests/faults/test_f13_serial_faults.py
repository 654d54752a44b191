"""Case 13: serial line faults between the agent's ControllerLink and the controller MCU, on a
real pty (SimulatedMcu): unplugged (pty closed, path gone), stuck (hung MCU; a line stuck at
0xFF), partial frames, a wrong baud rate (emulated by garbling every byte the MCU sends through a
fixed substitution table, with some bytes dropped, as a UART at the wrong speed does) and noise
bursts.

Asserted: the decoder resynchronises within one frame (at most one genuine frame lost after the
damage ends), "controller unreachable" is raised for the faults that silence the controller and
cleared after, and no misparsed frame reaches the callbacks that feed the publisher (every
TELEMETRY/HELLO delivered equals what the MCU sent). Only the MCU -> agent direction is garbled.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import replace

import pytest

from agent.controller import ControllerConfig, ControllerLink
from firmware_protocol import Frame, Poll, encode_frame
from firmware_protocol.framing import max_encoded
from loaxa.sim.mcu import SimulatedMcu
from tests.faults.report import record
from tests.servers import wait_until


class FaultyMcu(SimulatedMcu):
    """The simulator, with a wrong-baud-rate knob and a count of frames it wrote."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        rng = random.Random(5)
        self.table = bytes(rng.randrange(256) for _ in range(256))
        self.garble = False
        self.writes = 0

    def _write(self, frame: Frame) -> None:
        self.writes += 1
        if not self.garble or self._master is None:
            super()._write(frame)
            return
        data = bytes(self.table[b] for i, b in enumerate(encode_frame(frame)) if i % 7 != 3)
        with contextlib.suppress(OSError):  # nobody has the slave open
            os.write(self._master, data)


class Watch:
    """What the link hands on: reachability changes (timed), telemetry, hellos, decode order."""

    def __init__(self, sim: FaultyMcu) -> None:
        self.sim = sim
        self.lock = threading.Lock()
        self.reachable: list[tuple[float, bool]] = []
        self.telemetry: list = []
        self.hellos: list = []
        self.marker: int | None = None  # sim.writes when the damage ended
        self.lost_after_marker: int | None = None

    def callbacks(self) -> dict[str, Callable]:
        def reach(ok: bool) -> None:
            with self.lock:
                self.reachable.append((time.monotonic(), ok))

        return {
            "on_reachable": reach,
            "on_telemetry": self.telemetry.append,
            "on_hello": self.hellos.append,
        }

    def spy(self, link: ControllerLink) -> None:
        feed = link._decoder.feed

        def feed_and_note(chunk: bytes) -> list[Frame]:
            frames = feed(chunk)
            if frames and self.marker is not None and self.lost_after_marker is None:
                self.lost_after_marker = self.sim.writes - self.marker - 1
            return frames

        link._decoder.feed = feed_and_note  # type: ignore[method-assign]

    def mark(self) -> None:
        self.lost_after_marker = None
        self.marker = self.sim.writes

    def state_since(self, t0: float, ok: bool) -> float | None:
        with self.lock:
            return next((t - t0 for t, r in self.reachable if t >= t0 and r is ok), None)


@pytest.fixture
def line():
    sim = FaultyMcu(address=7).start()
    watch = Watch(sim)
    cfg = ControllerConfig(
        url=sim.path,
        address=7,
        poll_interval_s=0.2,
        response_timeout_ms=150,
        retries=2,
        reopen_interval_s=0.1,
    )
    link = ControllerLink(cfg, **watch.callbacks())
    watch.spy(link)
    link.start()
    wait_until(lambda: link.reachable and watch.telemetry, 10, what="first telemetry")
    yield sim, link, watch
    link.stop()
    sim.stop()
    assert not link._thread.is_alive()
    assert sim.counts["errors"] == 0


def _no_misparse(sim: FaultyMcu, watch: Watch) -> int:
    """Frames delivered that differ from what the MCU measured (uptime aside)."""
    expected = sim._telemetry()
    bad = [t for t in watch.telemetry if replace(t, uptime_s=0) != replace(expected, uptime_s=0)]
    bad += [h for h in watch.hellos if h != sim.hello]
    return len(bad)


def _silencing_fault(
    name: str,
    sim: FaultyMcu,
    link: ControllerLink,
    watch: Watch,
    start: Callable[[], None],
    stop: Callable[[], None],
) -> None:
    """A fault that makes the controller unreachable: detect, clear, recover."""
    t0 = time.monotonic()
    start()
    wait_until(lambda: watch.state_since(t0, False) is not None, 15, what=f"{name}: unreachable")
    detect = watch.state_since(t0, False)
    seen = len(watch.telemetry)
    t1 = time.monotonic()
    watch.mark()
    stop()
    wait_until(lambda: watch.state_since(t1, True) is not None, 15, what=f"{name}: reachable")
    wait_until(lambda: len(watch.telemetry) > seen, 10, what=f"{name}: telemetry again")
    record(
        f"f13 serial {name}",
        detect_s=detect,
        recover_s=watch.state_since(t1, True),
        lost_frames_after=watch.lost_after_marker,
        misparsed=_no_misparse(sim, watch),
    )
    assert watch.lost_after_marker is not None and watch.lost_after_marker <= 1


def test_unplugged_adapter(line, caplog):
    sim, link, watch = line
    with caplog.at_level(logging.WARNING, logger="agent.controller"):
        _silencing_fault("unplugged", sim, link, watch, sim.vanish, sim.reappear)
    assert "controller unreachable" in caplog.text
    assert _no_misparse(sim, watch) == 0


def test_hung_controller(line):
    sim, link, watch = line
    _silencing_fault(
        "stuck (mute MCU)", sim, link, watch, lambda: sim.mute(True), lambda: sim.mute(False)
    )
    assert _no_misparse(sim, watch) == 0


def test_line_stuck_at_ff(line):
    """A TX line stuck high reads as endless 0xFF: no delimiter ever; memory stays bounded."""
    sim, link, watch = line
    stuck = threading.Event()
    peak = [0]

    def jam() -> None:
        while not stuck.wait(0.01):
            sim.send_raw(b"\xff" * 256)
            peak[0] = max(peak[0], link._decoder.buffered)

    jammer = threading.Thread(target=jam)

    def start() -> None:
        sim.mute(True)  # the real MCU's frames are lost in the jam anyway
        jammer.start()

    def stop() -> None:
        stuck.set()
        jammer.join()
        sim.mute(False)

    _silencing_fault("stuck line 0xFF", sim, link, watch, start, stop)
    assert peak[0] <= max_encoded(1024) and link.stats["oversize"] >= 1
    assert _no_misparse(sim, watch) == 0


@pytest.mark.parametrize("rounds", [1, pytest.param(10, marks=pytest.mark.slow)])
def test_wrong_baud_rate(line, rounds):
    sim, link, watch = line
    for _ in range(rounds):
        _silencing_fault(
            "wrong baud rate",
            sim,
            link,
            watch,
            lambda: setattr(sim, "garble", True),
            lambda: setattr(sim, "garble", False),
        )
    assert link.stats["resyncs"] > 0
    assert _no_misparse(sim, watch) == 0


def _damage_then_resync(sim: FaultyMcu, watch: Watch, damage: bytes) -> int:
    watch.mark()
    sim.send_raw(damage)
    watch.marker = sim.writes  # the damage is on the line before the next genuine frame
    seen = len(watch.telemetry)
    wait_until(
        lambda: len(watch.telemetry) > seen and watch.lost_after_marker is not None,
        10,
        what="a frame after the damage",
    )
    assert watch.lost_after_marker is not None
    return watch.lost_after_marker


@pytest.mark.parametrize("rounds", [5, pytest.param(100, marks=pytest.mark.slow)])
def test_partial_frames_and_noise_bursts(line, rounds):
    sim, link, watch = line
    rng = random.Random(13)
    frame = encode_frame(Frame(7, 99, Poll(0x02)))
    partial = [
        _damage_then_resync(sim, watch, frame[: rng.randrange(1, len(frame) - 1)])
        for _ in range(rounds)
    ]
    noise = [
        _damage_then_resync(sim, watch, rng.randbytes(rng.randrange(1, 600))) for _ in range(rounds)
    ]
    sim.noise(True)  # garbage plus a delimiter before every frame: nothing may be lost
    seen = len(watch.telemetry)
    wait_until(lambda: len(watch.telemetry) >= seen + 3, 10, what="telemetry through noise")
    sim.noise(False)
    record(
        "f13 serial partial frames",
        rounds=rounds,
        lost_frames_max=max(partial),
        misparsed=_no_misparse(sim, watch),
    )
    record(
        "f13 serial noise bursts",
        rounds=rounds,
        lost_frames_max=max(noise),
        resyncs=link.stats["resyncs"],
        crc_errors=link.stats["crc_errors"],
        misparsed=_no_misparse(sim, watch),
    )
    assert max(partial) <= 1 and max(noise) <= 1
    assert link.reachable
    assert _no_misparse(sim, watch) == 0
