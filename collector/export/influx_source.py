"""Read a period's station timelines, evidence and broadcasts from InfluxDB (schema v1).

Queries (InfluxQL, names from ``collector.storage.names``), all filtered by province:

1. the last ``station_state`` point before ``t0 - lookback`` per station (the carried-in state);
2. every ``station_state`` point in [t0 - lookback, t1): the timeline; the lookback (35 days by
   default) lets an outage that began before the period show its true start;
3. evidence: one ``station_state`` or ``telemetry`` point inside [t0, t1) per station
   (``LIMIT 1`` per series, cheap even for a year);
4. ``broadcast`` stop points stamped in [t0, t1 + max broadcast length), clipped later.

Unknown state or cause spellings are logged and counted (``skipped``), never fatal.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable

from collector.export.figures import BroadcastSpan
from collector.export.influx_query import InfluxReader, quote_string
from collector.export.report import StationData
from collector.health.availability import Transition
from collector.health.events import Cause, State
from collector.storage import names as n
from loaxa.payloads import ProgramSource

log = logging.getLogger(__name__)
_DAY_MS = 86_400_000


class InfluxSource:
    def __init__(
        self,
        reader: InfluxReader,
        province: str,
        lookback_ms: int = 35 * _DAY_MS,
        max_broadcast_ms: int = 2 * _DAY_MS,
    ) -> None:
        self.reader = reader
        self.province = province
        self.lookback_ms = lookback_ms
        self.max_broadcast_ms = max_broadcast_ms
        self.skipped: Counter[str] = Counter()

    def _where(self, t0_ms: int | None, t1_ms: int, extra: str = "") -> str:
        cond = [f'"{n.T_PROVINCE}" = {quote_string(self.province)}', f"time < {t1_ms}ms"]
        if t0_ms is not None:
            cond.append(f"time >= {t0_ms}ms")
        if extra:
            cond.append(extra)
        return " AND ".join(cond)

    def load(
        self, t0_ms: int, t1_ms: int, step: Callable[[str], None] | None = None
    ) -> dict[str, StationData]:
        """StationData per station id seen in InfluxDB; ``step(name)`` after each query."""
        data: dict[str, StationData] = {}
        start = t0_ms - self.lookback_ms
        sel = f'SELECT "{n.F_STATE_NAME}", "{n.T_CAUSE}" FROM "{n.STATION_STATE}"'
        grouped = f'GROUP BY "{n.T_STATION}"'
        queries = [
            f"{sel} WHERE {self._where(None, start)} {grouped} ORDER BY time DESC LIMIT 1",
            f"{sel} WHERE {self._where(start, t1_ms)} {grouped}",
        ]
        for q in queries:
            for row in self.reader.rows(q):
                self._add_transition(data, row)
            if step:
                step("station_state")
        for d in data.values():
            d.timeline.sort(key=lambda t: t.ts_ms)
        for measurement, field in ((n.STATION_STATE, n.F_STATE_NAME), (n.TELEMETRY, n.F_SEQ)):
            q = (
                f'SELECT "{field}" FROM "{measurement}" WHERE {self._where(t0_ms, t1_ms)} '
                f"{grouped} LIMIT 1"
            )
            for row in self.reader.rows(q):
                data.setdefault(str(row[n.T_STATION]), StationData()).evidence = True
            if step:
                step(measurement)
        self._load_broadcasts(data, t0_ms, t1_ms)
        if step:
            step(n.BROADCAST)
        return data

    def _add_transition(self, data: dict[str, StationData], row: dict) -> None:
        station = str(row[n.T_STATION])
        try:
            state = State(row[n.F_STATE_NAME])
            cause = Cause(row[n.T_CAUSE]) if row.get(n.T_CAUSE) else None
        except ValueError:
            self.skipped["bad_state"] += 1
            log.warning(
                "station_state of %s at %s: unknown state/cause %r/%r, skipped",
                station,
                row["time"],
                row.get(n.F_STATE_NAME),
                row.get(n.T_CAUSE),
            )
            return
        d = data.setdefault(station, StationData())
        d.timeline.append(Transition(station, int(row["time"]), state, cause))

    def _load_broadcasts(self, data: dict[str, StationData], t0_ms: int, t1_ms: int) -> None:
        action = f"\"{n.T_ACTION}\" = 'stop'"
        q = (
            f'SELECT "{n.F_START_TS}", "{n.F_END_TS}", "{n.T_SOURCE}" FROM "{n.BROADCAST}" '
            f"WHERE {self._where(t0_ms, t1_ms + self.max_broadcast_ms, action)} "
            f'GROUP BY "{n.T_STATION}"'
        )
        for row in self.reader.rows(q):
            start, end = row.get(n.F_START_TS), row.get(n.F_END_TS)
            try:
                source = ProgramSource(row.get(n.T_SOURCE))
            except ValueError:
                source = ProgramSource.OTHER
            if not isinstance(start, int) or not isinstance(end, int) or end <= start:
                self.skipped["bad_broadcast"] += 1
                log.warning(
                    "broadcast stop of %s at %s: bad start/end %r/%r, skipped",
                    row[n.T_STATION],
                    row["time"],
                    start,
                    end,
                )
                continue
            if start < t1_ms and end > t0_ms:
                d = data.setdefault(str(row[n.T_STATION]), StationData())
                d.broadcasts.append(BroadcastSpan(start, end, source))
