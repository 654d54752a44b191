"""``loaxa dashboards feed``: keep the dashboards' derived measurements current.

Each run reads the month's station timelines back from InfluxDB (``station_state``, written by
the collector at every transition; read with the export's :class:`InfluxSource`, so the
carried-in state before the 1st is found), then writes:

* ``station_info`` for every station of the inventory;
* ``availability`` month to date per station and commune (dashboards/feeds.py);
* ``compliance`` now, per commune and for the province, with
  :func:`collector.health.compliance.compliance` over the latest states. Commune points count
  required stations not in maintenance (a commune all in maintenance has no share); the
  province point counts communes operating / communes counted.

It is a separate process (a systemd timer or ``--every 300``) so the dashboards need nothing
from the collector daemon beyond the schema; all writes are idempotent (same key, same point).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from collector.export.errors import ExportError
from collector.export.influx_query import InfluxReader
from collector.export.influx_source import InfluxSource
from collector.health.availability import Transition
from collector.health.compliance import compliance
from collector.health.events import State
from collector.inventory import Inventory
from collector.storage.errors import StorageError
from collector.storage.points import compliance_point
from dashboards.feeds import availability_points, month_start_ms, station_info_points

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FeedResult:
    stations_with_data: int
    lines: int


def compliance_lines(
    inventory: Inventory, timelines: Mapping[str, Sequence[Transition]], now_ms: int
) -> list[str]:
    def state_at(sid: str, ts: int) -> State:
        state = State.UNKNOWN
        for tr in timelines.get(sid, ()):
            if tr.ts_ms > ts:
                break
            state = tr.state
        return state

    snap = compliance(inventory, state_at, now_ms)
    province = inventory.province.slug
    lines = [
        compliance_point(now_ms, province, None, snap.operating, snap.counted, snap.goal_percent)
    ]
    for code, c in snap.communes.items():
        counted = len(c.required) - len(c.maintenance)
        lines.append(
            compliance_point(
                now_ms,
                province,
                code,
                counted - len(c.failing),
                counted,
                snap.goal_percent,
                c.name,
            )
        )
    return lines


def run_once(
    inventory: Inventory,
    reader: InfluxReader,
    write: Callable[[list[str]], None],
    now_ms: int,
    with_compliance: bool = True,
) -> FeedResult:
    """One feed run at ``now_ms``: read the month's timelines, write the derived points.
    Inside the collector daemon ``with_compliance`` is False: the daemon writes compliance
    from its live health engine, and one writer per measurement keeps the numbers single."""
    source = InfluxSource(reader, inventory.province.slug)
    data = source.load(month_start_ms(inventory, now_ms), now_ms)
    timelines = {
        sid: d.timeline for sid, d in data.items() if sid in inventory.stations and d.timeline
    }
    unknown = sorted(set(data) - set(inventory.stations))
    if unknown:
        log.warning(
            "feed: %d stations in InfluxDB are not in the inventory: %s", len(unknown), unknown[:10]
        )
    lines = [
        *station_info_points(inventory, now_ms),
        *availability_points(inventory, timelines, now_ms),
        *(compliance_lines(inventory, timelines, now_ms) if with_compliance else []),
    ]
    write(lines)
    return FeedResult(len(timelines), len(lines))


def run_every(
    every_s: float,
    job: Callable[[], FeedResult],
    stop: threading.Event,
) -> int:
    """Run ``job`` now and then every ``every_s`` until ``stop``; a failed run is logged and
    counted, the next one tried on time. Returns the number of failed runs."""
    failures = 0
    while not stop.is_set():
        try:
            result = job()
            log.info(
                "feed: %d lines (%d stations with data)", result.lines, result.stations_with_data
            )
        except (ExportError, StorageError, OSError) as err:  # log, count, try again
            failures += 1
            log.error("feed run failed (%d so far): %s", failures, err)
        stop.wait(every_s)
    return failures
