"""The collector as the scale benchmark runs it: ``loaxa collector`` itself, with the health
tick timed from inside.

    python bench/scale_collector.py TICK_LOG -- collector --config FILE

The daemon has no metric for the duration of its health tick, so this launcher wraps
``HealthFeed.tick`` (the apscheduler job: engine tick, state points, snapshot save) before
handing over to ``loaxa.cli.main``. Each tick appends one JSON line to TICK_LOG:
``{"t": unix s, "tick_s": duration, "seen": stations with a state}``; ``seen`` is counted after
the timed part, under the feed's lock. Nothing else in the daemon is changed.
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
        t0 = time.perf_counter()
        original(self)
        took = time.perf_counter() - t0
        with self._lock:
            seen = sum(1 for timeline in self.engine.transitions.values() if timeline)
        out.write(json.dumps({"t": time.time(), "tick_s": round(took, 4), "seen": seen}) + "\n")

    HealthFeed.tick = tick  # type: ignore[method-assign]


if __name__ == "__main__":
    log, sep, *rest = sys.argv[1:]
    if sep != "--":
        sys.exit("usage: scale_collector.py TICK_LOG -- collector --config FILE")
    timed_ticks(Path(log))
    sys.exit(main(rest))
