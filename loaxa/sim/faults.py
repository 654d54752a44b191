"""Fault models for the fleet simulator: what goes wrong, where, when, for how long.

A :class:`FaultPlan` is drawn ahead of the run from a seeded RNG (same inventory, stations,
duration, seed and rates -> the same plan), in SIMULATED seconds from the start; the
:class:`~loaxa.sim.fault_injector.FaultInjector` applies it at ``start + at_s / speed``.

Models (rates per day, :class:`FaultRates`; Poisson arrivals, log-normal durations):

- ``power_cut``: the grid feeder of an AREA fails (a former district for Cao Bằng, else a
  commune): every station in it goes on battery together; each station's battery lasts
  3-10 h (drawn per station), so in a long cut some report ``battery_low`` and then run flat
  (controller and agent dark, link dropped) until mains returns.
- ``storm`` (correlation): a thunderstorm over an area; lightning damages the amplifier of
  1-3 stations (``amp_fault`` until a technician's repair visit 4-36 h later) and, with
  probability 0.6, cuts the area's power at the same moment.
- ``link_loss``: a station's 3G/4G link is down; it keeps broadcasting and queueing, and
  backfills when the link returns. ``flapping_link``: 3-8 short drops within ~45 min.
- ``silent_broadcast``: a stuck source (audio far below the silence threshold while on air).
- ``clock_reset``: the controller board lost its clock (RTC battery) and stamps readings
  years in the past until NTP fixes it 10-60 min later.
- ``maintenance``: a technician's visit (door open 1-3 h), routine every ~90 days per station,
  and one after every lightning damage (which ends the amp fault).
- ``gateway_failure``: a serial gateway's line goes dead (its stations are unreachable).
"""

from __future__ import annotations

import csv
import math
import random
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum

from collector.inventory import Inventory
from loaxa.sim.inventory_gen import DATA_DIR

DAY_S = 86_400.0


class FaultKind(StrEnum):
    POWER_CUT = "power_cut"
    LINK_LOSS = "link_loss"
    FLAPPING_LINK = "flapping_link"
    AMP_FAULT = "amp_fault"
    SILENT_BROADCAST = "silent_broadcast"
    CLOCK_RESET = "clock_reset"
    MAINTENANCE = "maintenance"
    GATEWAY_FAILURE = "gateway_failure"


_TEXT = {
    FaultKind.POWER_CUT: "power cut in {target}",
    FaultKind.LINK_LOSS: "3G/4G link lost at {target}",
    FaultKind.FLAPPING_LINK: "flapping link at {target}",
    FaultKind.AMP_FAULT: "amplifier fault at {target}",
    FaultKind.SILENT_BROADCAST: "silent broadcast (stuck source) at {target}",
    FaultKind.CLOCK_RESET: "clock reset at {target}",
    FaultKind.MAINTENANCE: "maintenance visit at {target}",
    FaultKind.GATEWAY_FAILURE: "serial gateway {target} failed",
}


@dataclass(frozen=True)
class FaultRates:
    """Expected occurrences per day (per area, station or gateway), and typical durations."""

    power_cut_per_area: float = 0.12
    storm_per_area: float = 0.04
    link_loss_per_station: float = 0.08
    flapping_per_station: float = 0.02
    silent_per_station: float = 0.01
    clock_reset_per_station: float = 0.005
    maintenance_per_station: float = 1 / 90
    gateway_failure_per_gateway: float = 0.02
    power_cut_median_s: float = 5400.0
    link_loss_median_s: float = 1800.0

    def scaled(self, factor: float) -> FaultRates:
        """All rates multiplied by ``factor`` (a demo wants more happening per minute)."""
        names = [n for n in self.__dataclass_fields__ if n.endswith(("_area", "_station",
                                                                     "_gateway"))]  # fmt: skip
        return replace(self, **{n: getattr(self, n) * factor for n in names})


NO_FAULTS = FaultRates(**{n: 0.0 for n in FaultRates.__dataclass_fields__ if "median" not in n})


@dataclass(frozen=True)
class Fault:
    at_s: float  # simulated seconds after the start of the run
    kind: FaultKind
    target: str  # what a person would name: "former district Hòa An", a station or gateway
    stations: tuple[str, ...]
    duration_s: float
    flat: tuple[tuple[str, float], ...] = ()  # power_cut: (station, s after the cut it goes flat)
    drops: tuple[tuple[float, float], ...] = ()  # flapping: (offset s, length s)
    clock_offset_s: float = 0.0  # clock_reset: how far the clock jumped
    cause: str = ""  # "lightning" for storm damage

    def describe(self) -> str:
        text = _TEXT[self.kind].format(target=self.target)
        extra = []
        if len(self.stations) > 1 or self.kind == FaultKind.POWER_CUT:
            extra.append(f"{len(self.stations)} station{'s' * (len(self.stations) != 1)}")
        if self.flat:
            extra.append(f"{len(self.flat)} run flat")
        if self.cause:
            extra.append(self.cause)
        extra.append(f"for {_span(self.duration_s)}")
        return f"{text} ({', '.join(extra)})"


def _span(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


@dataclass(frozen=True)
class FaultPlan:
    seed: int
    duration_s: float
    faults: tuple[Fault, ...] = field(default_factory=tuple)

    def lines(self, start: datetime, speed: float = 1.0) -> list[str]:
        """ "14:02 power cut in former district Hòa An (12 stations, ...)", in wall-clock time."""
        return [f"{(start + timedelta(seconds=f.at_s / speed)):%H:%M} {f.describe()}"
                for f in self.faults]  # fmt: skip


def former_districts(data_dir=DATA_DIR) -> dict[str, str]:
    """Cao Bằng station id ("cb-<former commune code>") -> former district name."""
    with open(data_dir / "former_communes.csv", encoding="utf-8", newline="") as fh:
        return {f"cb-{r['former_code']}": r["former_district"] for r in csv.DictReader(fh)}


def areas_of(inventory: Inventory, stations: list[str]) -> dict[str, list[str]]:
    """Power areas: former districts where known (Cao Bằng), otherwise communes."""
    districts = former_districts() if inventory.province.slug == "cao-bang" else {}
    out: dict[str, list[str]] = {}
    for sid in stations:
        if sid in districts:
            area = "former district " + districts[sid].removeprefix("Huyện ")
        else:
            commune = inventory.communes[inventory.stations[sid].commune]
            area = commune.name
        out.setdefault(area, []).append(sid)
    return out


class _Draw:
    def __init__(self, seed: int, duration_s: float) -> None:
        self.rng, self.duration_s = random.Random(seed), duration_s

    def arrivals(self, per_day: float) -> list[float]:
        out: list[float] = []
        if per_day <= 0:
            return out
        t = self.rng.expovariate(per_day / DAY_S)
        while t < self.duration_s:
            out.append(t)
            t += self.rng.expovariate(per_day / DAY_S)
        return out

    def lognormal(self, median: float, sigma: float, lo: float, hi: float) -> float:
        return min(hi, max(lo, median * math.exp(self.rng.gauss(0.0, sigma))))


def build_plan(
    inventory: Inventory,
    duration_s: float,
    seed: int = 0,
    rates: FaultRates | None = None,
    stations: list[str] | None = None,
) -> FaultPlan:
    """Draw every fault of a run of ``duration_s`` simulated seconds over ``stations``
    (default: all). Stations with an RS-485 address have no agent: no link or clock faults."""
    rates = rates or FaultRates()
    ids = sorted(stations if stations is not None else inventory.stations)
    agents = [s for s in ids if inventory.stations[s].address is None]
    names = {s: f"{s} {inventory.stations[s].name}" for s in ids}
    draw, faults = _Draw(seed, duration_s), []
    battery_s = {s: draw.rng.uniform(3, 10) * 3600 for s in ids}
    for area, members in sorted(areas_of(inventory, ids).items()):
        for at in draw.arrivals(rates.power_cut_per_area):
            faults.append(_power_cut(draw, rates, area, members, at, battery_s))
        for at in draw.arrivals(rates.storm_per_area):
            faults.extend(_storm(draw, rates, area, members, at, battery_s, names))
    for sid in ids:
        for at in draw.arrivals(rates.maintenance_per_station):
            faults.append(Fault(at, FaultKind.MAINTENANCE, names[sid], (sid,),
                                draw.rng.uniform(3600, 3 * 3600)))  # fmt: skip
        for at in draw.arrivals(rates.silent_per_station):
            faults.append(Fault(at, FaultKind.SILENT_BROADCAST, names[sid], (sid,),
                                draw.lognormal(4 * 3600, 0.7, 1800, 24 * 3600)))  # fmt: skip
    for sid in agents:
        for at in draw.arrivals(rates.link_loss_per_station):
            span = draw.lognormal(rates.link_loss_median_s, 1.0, 300, 12 * 3600)
            faults.append(Fault(at, FaultKind.LINK_LOSS, names[sid], (sid,), span))
        for at in draw.arrivals(rates.flapping_per_station):
            faults.append(_flapping(draw, sid, names[sid], at))
        for at in draw.arrivals(rates.clock_reset_per_station):
            offset = -draw.rng.uniform(2, 6) * 365 * DAY_S
            faults.append(Fault(at, FaultKind.CLOCK_RESET, names[sid], (sid,),
                                draw.rng.uniform(600, 3600), clock_offset_s=offset))  # fmt: skip
    gateways = sorted({inventory.stations[s].upstream for s in ids
                       if inventory.stations[s].address is not None})  # fmt: skip
    for gw in gateways:
        for at in draw.arrivals(rates.gateway_failure_per_gateway):
            behind = tuple(s for s in ids if inventory.stations[s].upstream == gw)
            faults.append(Fault(at, FaultKind.GATEWAY_FAILURE, gw or "", behind,
                                draw.lognormal(3 * 3600, 0.6, 1800, 12 * 3600)))  # fmt: skip
    faults.sort(key=lambda f: (f.at_s, f.kind, f.target))
    return FaultPlan(seed, duration_s, tuple(faults))


def _power_cut(draw: _Draw, rates: FaultRates, area: str, members: list[str], at: float,
               battery_s: dict[str, float], cause: str = "") -> Fault:  # fmt: skip
    span = draw.lognormal(rates.power_cut_median_s, 0.8, 1200, 24 * 3600)
    flat = tuple((s, battery_s[s]) for s in members if battery_s[s] < span)
    return Fault(at, FaultKind.POWER_CUT, area, tuple(members), span, flat=flat, cause=cause)


def _storm(draw: _Draw, rates: FaultRates, area: str, members: list[str], at: float,
           battery_s: dict[str, float], names: dict[str, str]) -> list[Fault]:  # fmt: skip
    out = []
    if draw.rng.random() < 0.6:
        out.append(_power_cut(draw, rates, area, members, at, battery_s, "storm"))
    hit = draw.rng.sample(members, min(len(members), draw.rng.randint(1, 3)))
    for sid in sorted(hit):
        repair_after = draw.rng.uniform(4, 36) * 3600
        visit = draw.rng.uniform(1800, 2 * 3600)
        out.append(Fault(at, FaultKind.AMP_FAULT, names[sid], (sid,), repair_after + visit,
                         cause="lightning"))  # fmt: skip
        out.append(Fault(at + repair_after, FaultKind.MAINTENANCE, names[sid], (sid,), visit,
                         cause="repair after lightning"))  # fmt: skip
    return out


def _flapping(draw: _Draw, sid: str, name: str, at: float) -> Fault:
    drops, offset = [], 0.0
    for _ in range(draw.rng.randint(3, 8)):
        offset += round(draw.rng.uniform(120, 600), 1)
        length = round(draw.rng.uniform(20, 120), 1)
        drops.append((offset, length))
        offset += length
    return Fault(at, FaultKind.FLAPPING_LINK, name, (sid,), offset, drops=tuple(drops))
