"""A demo's opening: one fault of every kind early in the run, so a few minutes show them all.

Realistic rates (loaxa/sim/faults.py) make a short demo quiet: a province sees about one area
power cut a day. :func:`with_showcase` adds to a plan, within ``within_s`` simulated seconds,
a 3G/4G link loss, an area power cut long enough for some batteries to run flat, a lightning
storm (amp fault, later a repair visit), a stuck source on a station that is on air around
the clock if there is one, a flapping link, a clock reset, a serial gateway failure (if a
gateway's stations are simulated) and a routine maintenance visit. Seeded like the plan.
"""

from __future__ import annotations

import random
from dataclasses import replace

from collector.inventory import Inventory
from loaxa.sim.faults import (
    Fault,
    FaultKind,
    FaultPlan,
    FaultRates,
    _Draw,
    _flapping,
    _power_cut,
    _storm,
    areas_of,
)


def with_showcase(plan: FaultPlan, inventory: Inventory, stations: list[str] | None = None,
                  within_s: float = 3600.0) -> FaultPlan:  # fmt: skip
    """``plan`` plus the opening faults (sorted into it)."""
    ids = sorted(stations if stations is not None else inventory.stations)
    if not ids:
        return plan
    rng = random.Random(plan.seed ^ 0x5EED)
    draw = _Draw(plan.seed ^ 0x5EED, within_s)
    agents = [s for s in ids if inventory.stations[s].address is None] or ids
    always = [s for s in agents if inventory.schedule_for(s).always] or agents
    name = {s: f"{s} {inventory.stations[s].name}" for s in ids}
    areas = sorted(areas_of(inventory, ids).items())
    step = within_s / 9
    cut_area, cut_members = rng.choice(areas)
    storm_area, storm_members = rng.choice(areas)
    # batteries for the cut: the first third run flat within its 3 h, the rest hold out
    battery = {s: (1.5 if i % 3 == 0 else 8.0) * 3600 for i, s in enumerate(cut_members)}
    battery.update({s: 8.0 * 3600 for s in storm_members if s not in battery})
    rates = FaultRates(power_cut_median_s=3 * 3600)
    link, silent, flap, clock = (rng.choice(agents), rng.choice(always), rng.choice(agents),
                                 rng.choice(agents))  # fmt: skip
    visit = rng.choice(ids)
    flat = tuple((s, b) for s, b in battery.items() if s in cut_members and b < 3 * 3600)
    faults = [
        Fault(1 * step, FaultKind.LINK_LOSS, name[link], (link,), 1800),
        replace(_power_cut(draw, rates, cut_area, cut_members, 2 * step, battery),
                duration_s=3 * 3600, flat=flat),
        *[f for f in _storm(draw, rates, storm_area, storm_members, 3 * step, battery, name)
          if f.kind != FaultKind.POWER_CUT],
        Fault(4 * step, FaultKind.SILENT_BROADCAST, name[silent], (silent,), 2 * 3600),
        _flapping(draw, flap, name[flap], 5 * step),
        Fault(6 * step, FaultKind.CLOCK_RESET, name[clock], (clock,), 1200,
              clock_offset_s=-3 * 365 * 86400.0),
        Fault(8 * step, FaultKind.MAINTENANCE, name[visit], (visit,), 3600),
    ]  # fmt: skip
    gateways = sorted({inventory.stations[s].upstream or "" for s in ids
                       if inventory.stations[s].address is not None})  # fmt: skip
    if gateways:
        gw = rng.choice(gateways)
        behind = tuple(s for s in ids if inventory.stations[s].upstream == gw)
        faults.append(Fault(7 * step, FaultKind.GATEWAY_FAILURE, gw, behind, 2 * 3600))
    merged = sorted([*plan.faults, *faults], key=lambda f: (f.at_s, f.kind, f.target))
    return replace(plan, faults=tuple(merged))
