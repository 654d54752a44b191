"""The collector as the scale benchmark runs it: ``loaxa collector`` itself, with the health
tick timed from inside.

    python bench/scale_collector.py TICK_LOG -- collector --config FILE

The daemon has no metric for the duration of its health tick, so this launcher wraps
``HealthFeed.tick`` (the apscheduler job: engine tick, state points, snapshot save) before
handing over to ``loaxa.cli.main``. Each tick appends one JSON line to TICK_LOG:
``{"t": unix s, "tick_s": duration, "seen": stations with a state}`` (and ``{"t", "start"}``
as it begins, so a tick that never ends is visible); ``seen`` is counted after the timed part,
under the feed's lock.

``--index-stations-of`` (before ``--``) also replaces ``Inventory.stations_of`` (a scan of
every station, called once per commune by the compliance and the dashboard feed: O(stations x
communes)) with a per-commune index built on first use, to measure what the rest of the daemon
does at 100k stations once that is fixed. Without the flag nothing else is changed.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from collector.ingest.health_feed import HealthFeed
from loaxa.cli import main


def timed_ticks(log_path: Path) -> None:
    original = HealthFeed.tick
    out = open(log_path, "a", buffering=1)  # noqa: SIM115 (open for the process's life)

    def tick(self: HealthFeed) -> None:
        out.write(json.dumps({"t": time.time(), "start": True}) + "\n")  # a stuck tick shows
        t0 = time.perf_counter()
        original(self)
        took = time.perf_counter() - t0
        with self._lock:
            seen = sum(1 for timeline in self.engine.transitions.values() if timeline)
        out.write(json.dumps({"t": time.time(), "tick_s": round(took, 4), "seen": seen}) + "\n")

    HealthFeed.tick = tick  # type: ignore[method-assign]


def index_stations_of() -> None:
    from collector.inventory import Inventory

    index: dict[int, dict[str, list]] = {}

    def stations_of(self: Inventory, commune: str) -> list:
        by_commune = index.get(id(self))
        if by_commune is None:
            by_commune = index[id(self)] = {}
            for s in self.stations.values():
                by_commune.setdefault(s.commune, []).append(s)
        return list(by_commune.get(commune, ()))

    Inventory.stations_of = stations_of  # type: ignore[method-assign]


if __name__ == "__main__":
    args = sys.argv[1:]
    patch = "--index-stations-of" in args[: args.index("--") if "--" in args else 0]
    args = [a for a in args if a != "--index-stations-of"]
    if len(args) < 2 or args[1] != "--":
        sys.exit("usage: scale_collector.py TICK_LOG [--index-stations-of] -- collector ...")
    timed_ticks(Path(args[0]))
    if patch:
        index_stations_of()
    sys.exit(main(args[2:]))
