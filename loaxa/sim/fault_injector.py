"""Applies a :class:`~loaxa.sim.faults.FaultPlan` to a running :class:`~loaxa.sim.fleet.Fleet`.

The plan is expanded into :class:`Step` s (power lost / battery low / flat / restored, link
down / up, ...) in simulated seconds; one thread applies each at ``t0 + at_s / speed`` of the
monotonic clock, waiting on its stop event (so ``stop()`` returns at once). ``apply(step)`` is
public so tests can drive a fleet step by step without a clock. Every fault start and end is
logged and passed to ``on_event(text, fault, step)`` for a demo's live view, e.g.
"14:02 power cut in former district Hòa An (12 stations, 2 run flat, for 2 h 10 min)".
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from loaxa.sim.faults import Fault, FaultKind, FaultPlan
from loaxa.sim.fleet import Fleet

log = logging.getLogger(__name__)
OnEvent = Callable[[str, Fault, "Step"], None]


@dataclass(frozen=True)
class Step:
    at_s: float
    fault: int  # index in plan.faults
    action: str
    stations: tuple[str, ...]
    value: float = 0.0


def expand(plan: FaultPlan) -> list[Step]:
    """Every state change of the plan, in time order (ties keep the plan's order)."""
    steps: list[Step] = []
    for i, f in enumerate(plan.faults):
        end, s = f.at_s + f.duration_s, f.stations
        if f.kind == FaultKind.POWER_CUT:
            steps.append(Step(f.at_s, i, "power_lost", s))
            for sid, after in f.flat:
                steps.append(Step(f.at_s + 0.8 * after, i, "battery_low", (sid,)))
                steps.append(Step(f.at_s + after, i, "power_flat", (sid,)))
            steps.append(Step(end, i, "power_restored", s))
        elif f.kind == FaultKind.FLAPPING_LINK:
            for offset, length in f.drops:
                steps.append(Step(f.at_s + offset, i, "link_down", s))
                steps.append(Step(f.at_s + offset + length, i, "link_up", s))
        else:
            start, stop = _PAIRS[f.kind]
            steps.append(Step(f.at_s, i, start, s, f.clock_offset_s))
            steps.append(Step(end, i, stop, s))
    steps.sort(key=lambda st: st.at_s)
    return steps


_PAIRS = {
    FaultKind.LINK_LOSS: ("link_down", "link_up"),
    FaultKind.AMP_FAULT: ("amp_fault", "amp_repaired"),
    FaultKind.SILENT_BROADCAST: ("stuck", "unstuck"),
    FaultKind.CLOCK_RESET: ("clock_offset", "clock_ok"),
    FaultKind.MAINTENANCE: ("door_open", "door_closed"),
    FaultKind.GATEWAY_FAILURE: ("gateway_fail", "gateway_repair"),
}
_FIRST = {"power_lost", "link_down", "amp_fault", "stuck", "clock_offset", "door_open",
          "gateway_fail"}  # fmt: skip
_LAST = {"power_restored", "link_up", "amp_repaired", "unstuck", "clock_ok", "door_closed",
         "gateway_repair"}  # fmt: skip


class FaultInjector:
    def __init__(self, fleet: Fleet, plan: FaultPlan, *, on_event: OnEvent | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.fleet, self.plan = fleet, plan
        self.steps = expand(plan)
        self.applied = 0
        self.errors = 0
        self._on_event = on_event
        self._clock = clock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sim-faults", daemon=True)

    def start(self) -> FaultInjector:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(30)

    def _run(self) -> None:
        t0 = self._clock()
        for step in self.steps:
            due = t0 + step.at_s / self.fleet.speed
            if self._stop.wait(max(0.0, due - self._clock())):
                return
            self.apply(step)

    def apply(self, step: Step) -> None:
        """Apply one step now; a failure is logged and counted, never raised."""
        fault = self.plan.faults[step.fault]
        try:
            self._apply(step)
        except Exception:
            self.errors += 1
            log.exception("fault step %s failed", step)
            return
        self.applied += 1
        text = self._text(step, fault)
        if text:
            log.info("%s", text)
            if self._on_event:
                self._on_event(text, fault, step)

    def _text(self, step: Step, fault: Fault) -> str | None:
        now = f"{datetime.now(self.fleet.inventory.province.tz):%H:%M}"  # province time
        if fault.kind == FaultKind.FLAPPING_LINK:
            first, last = fault.at_s + fault.drops[0][0], fault.at_s + fault.duration_s
            if step.action == "link_down" and step.at_s == first:
                return f"{now} {fault.describe()}"
            return f"{now} end: {fault.describe()}" if step.at_s == last else None
        if step.action in _FIRST:
            return f"{now} {fault.describe()}"
        if step.action in _LAST:
            return f"{now} end: {fault.describe()}"
        return f"{now} {step.action.replace('_', ' ')} at {', '.join(step.stations)}"

    def _apply(self, step: Step) -> None:
        if step.action in ("gateway_fail", "gateway_repair"):
            bus = self.fleet.buses.get(self.plan.faults[step.fault].target)
            if bus is not None:
                bus.fail() if step.action == "gateway_fail" else bus.repair()
            return
        cause = f"fault-{step.fault}"
        for sid in step.stations:
            handle = self.fleet.stations.get(sid)
            if handle is None:
                continue  # not simulated in this run
            actions: dict[str, Callable[[], None]] = {
                "power_lost": handle.power_lost,
                "battery_low": handle.battery_low,
                "power_flat": handle.power_flat,
                "power_restored": handle.power_restored,
                "link_down": lambda h=handle: h.link_down(cause),
                "link_up": lambda h=handle: h.link_up(cause),
                "amp_fault": lambda h=handle: h.set_amp_fault(True),
                "amp_repaired": lambda h=handle: h.set_amp_fault(False),
                "stuck": lambda h=handle: h.set_stuck_source(True),
                "unstuck": lambda h=handle: h.set_stuck_source(False),
                "clock_offset": lambda h=handle: h.set_clock_offset(step.value),
                "clock_ok": lambda h=handle: h.set_clock_offset(0.0),
                "door_open": lambda h=handle: h.set_door(True),
                "door_closed": lambda h=handle: h.set_door(False),
            }
            actions[step.action]()
