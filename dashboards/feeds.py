"""Points the dashboards need beyond the agents' payloads (schema v1, collector/storage/SCHEMA.md).

* ``station_info``: the inventory (names, coordinates, technicians and phones), so the geomap
  and the "stations not operating" table need no second data source.
* ``availability``: month-to-date availability per station and per commune, computed from the
  health timelines with :func:`collector.health.availability.availability` and the exports'
  commune timeline (one truth with ``loaxa export``), so a panel reads one exact number instead
  of integrating state points in InfluxQL (which cannot carry the state from before the
  dashboard's time range).

The collector calls these at start-up and then every few minutes (pure functions, clock passed
in); the encoders are ``collector.storage.points``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from collector.export.communes import commune_timeline
from collector.health.availability import Availability, Transition, availability
from collector.inventory import Inventory
from collector.storage.points import availability_point, station_info_point


def station_info_points(inventory: Inventory, ts_ms: int) -> list[str]:
    """One ``station_info`` point per station of the inventory."""
    province = inventory.province.slug
    lines = []
    for station in inventory.stations.values():
        techs = inventory.technicians_for(station.id)
        lines.append(
            station_info_point(
                ts_ms,
                province,
                station.commune,
                station.id,
                station_name=station.name,
                commune_name=inventory.communes[station.commune].name,
                lat=station.lat,
                lon=station.lon,
                required=station.required,
                position=station.position,
                technician="; ".join(t.name for t in techs),
                phone="; ".join(t.phone for t in techs if t.phone),
            )
        )
    return lines


def month_start_ms(inventory: Inventory, now_ms: int) -> int:
    """00:00 local province time on the 1st of the month containing ``now_ms``."""
    local = datetime.fromtimestamp(now_ms / 1000, inventory.province.tz)
    start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return int(start.timestamp() * 1000)


def _point(
    inventory: Inventory, commune: str, station: str | None, a: Availability, now_ms: int
) -> str:
    down = a.t1_ms - a.t0_ms - a.operating_ms - a.maintenance_ms - a.unknown_ms
    return availability_point(
        now_ms,
        inventory.province.slug,
        commune,
        station,
        period_start_ms=a.t0_ms,
        operating_ms=a.operating_ms,
        down_ms=down,
        maintenance_ms=a.maintenance_ms,
        unknown_ms=a.unknown_ms,
    )


def availability_points(
    inventory: Inventory, timelines: Mapping[str, Sequence[Transition]], now_ms: int
) -> list[str]:
    """Month-to-date ``availability`` points for every station and every commune.

    ``timelines`` maps station id to its sorted transitions (at least those since the start
    of the month, plus the last one before it); a station without any is unknown throughout.
    """
    t0 = month_start_ms(inventory, now_ms)
    lines = []
    for code in inventory.communes:
        stations = inventory.stations_of(code)
        for st in stations:
            a = availability(timelines.get(st.id, ()), t0, now_ms)
            lines.append(_point(inventory, code, st.id, a, now_ms))
        required = [timelines.get(st.id, ()) for st in stations if st.required]
        if required:
            merged = commune_timeline(code, required, now_ms)
            lines.append(_point(inventory, code, None, availability(merged, t0, now_ms), now_ms))
    return lines
