"""Compliance: the share of communes whose radio system is operating, at a given moment.

A commune operates when every one of its required stations is operating (operating, on
battery, battery low or link down). Stations in maintenance are left out and listed apart; a
commune whose required stations are all in maintenance is not counted either way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from collector.health.events import State
from collector.inventory import Inventory


@dataclass(frozen=True)
class CommuneCompliance:
    code: str
    name: str
    operating: bool | None  # None: everything required is in maintenance
    required: list[str]
    failing: dict[str, State] = field(default_factory=dict)  # station -> its state
    maintenance: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ComplianceSnapshot:
    ts_ms: int
    goal_percent: float
    communes: dict[str, CommuneCompliance]

    @property
    def counted(self) -> int:
        return sum(1 for c in self.communes.values() if c.operating is not None)

    @property
    def operating(self) -> int:
        return sum(1 for c in self.communes.values() if c.operating)

    @property
    def percent(self) -> float | None:
        return None if self.counted == 0 else 100.0 * self.operating / self.counted

    @property
    def meets_goal(self) -> bool:
        return self.percent is not None and self.percent >= self.goal_percent

    @property
    def below_goal(self) -> list[CommuneCompliance]:
        """Communes not operating, with the stations that fail them."""
        return [c for c in self.communes.values() if c.operating is False]

    @property
    def in_maintenance(self) -> dict[str, list[str]]:
        return {c.code: c.maintenance for c in self.communes.values() if c.maintenance}


def compliance(
    inventory: Inventory, state_at: Callable[[str, int], State], ts_ms: int
) -> ComplianceSnapshot:
    result: dict[str, CommuneCompliance] = {}
    for code, commune in inventory.communes.items():
        required = [s.id for s in inventory.stations_of(code) if s.required]
        states = {sid: state_at(sid, ts_ms) for sid in required}
        maint = [sid for sid, st in states.items() if st is State.MAINTENANCE]
        failing = {
            sid: st
            for sid, st in states.items()
            if st is not State.MAINTENANCE and not st.operating
        }
        counted = len(required) > len(maint)
        result[code] = CommuneCompliance(
            code, commune.name, (not failing) if counted else None, required, failing, maint
        )
    return ComplianceSnapshot(ts_ms, inventory.province.goal_percent, result)
