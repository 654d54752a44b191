"""What the scale benchmark samples while a point runs, and the figures made from it.

A sampler thread reads, every ``every_s``: the count of ``telemetry`` points in InfluxDB, the
collector's ``/healthz`` (ingest backlog, spool depth), CPU seconds (``/proc/<pid>/stat``) of the
collector, Mosquitto and influxd, and the collector's RSS (``VmRSS``). From a sample at time T
with ``c`` readings stored, against the schedule (``due``: send times in order):

- offered(T) = readings due by T; backlog = offered - stored;
- age of the oldest unstored reading = T - due[c] when due[c] <= T (0 otherwise): how far
  storage lags behind the fleet. The count is read in publish order, so with one publisher and
  one consumer the c stored readings are the first c sent (within one batch). Its precision is
  the sampling step plus the query time (both recorded).
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
import urllib.request
from bisect import bisect_right
from dataclasses import dataclass, field
from pathlib import Path

from bench.ingest_run import Influx, cpu_seconds

_HERE = Path(__file__).resolve().parent


def code_commit() -> str:
    """The checkout's commit, "+changes" if collector/ or agent/ differ from it: the code that
    was measured (other work lands in the same checkout between runs)."""
    git = ["git", "-C", str(_HERE)]
    try:
        head = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            [*git, "status", "--porcelain", "--", "collector", "agent", "loaxa"],
            capture_output=True, text=True, timeout=10,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return head + ("+changes" if dirty else "")


def rss_kib(pid: int, key: str = "VmRSS") -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


@dataclass
class Sample:
    t: float  # unix seconds, middle of the count query
    stored: int
    query_s: float
    backlog: int  # collector: received, not yet stored
    spool: int
    cpu: dict[str, float]
    rss_kib: int


@dataclass
class Sampler:
    influx: Influx
    db: str
    pids: dict[str, int]  # "collector", "mosquitto", "influxd"
    health_url: str
    baseline: int = 0  # points stored before the load (the readiness probe)
    every_s: float = 2.0
    samples: list[Sample] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="scale-sampler", daemon=True)

    def start(self) -> Sampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(60)

    def sample(self) -> Sample:
        t0 = time.time()
        stored = self.influx.count(self.db) - self.baseline
        t1 = time.time()
        health = _healthz(self.health_url)
        cpu = {k: cpu_seconds(pid) for k, pid in self.pids.items()}
        s = Sample(
            (t0 + t1) / 2,
            stored,
            t1 - t0,
            int(health.get("ingest_backlog", -1)),
            int(health.get("spool_depth", -1)),
            cpu,
            rss_kib(self.pids["collector"]),
        )
        self.samples.append(s)
        return s

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.every_s)


def _healthz(url: str) -> dict:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as err:  # 503 still carries the report
        return json.loads(err.read())
    except (OSError, ValueError):
        return {}


def lag_figures(samples: list[Sample], due_s: list[float]) -> dict[str, float]:
    """Backlog and age of the oldest unstored reading, max over the samples taken while the
    fleet was publishing and after it stopped."""
    max_backlog, max_age = 0, 0.0
    for s in samples:
        offered = bisect_right(due_s, s.t)
        max_backlog = max(max_backlog, offered - s.stored)
        if s.stored < len(due_s) and due_s[s.stored] <= s.t:
            max_age = max(max_age, s.t - due_s[s.stored])
    return {"max_backlog_msgs": max_backlog, "max_age_unstored_s": round(max_age, 2)}


def timeline(samples: list[Sample], t0: float, due_s: list[float], every_s: float = 10.0) -> list:
    """About one ``[s since t0, stored, backlog, age of the oldest unstored]`` per ``every_s``:
    whether a lag stays bounded or grows."""
    out, next_t = [], t0
    for s in samples:
        if s.t < next_t:
            continue
        offered = bisect_right(due_s, s.t)
        age = s.t - due_s[s.stored] if s.stored < len(due_s) and due_s[s.stored] <= s.t else 0.0
        out.append([round(s.t - t0, 1), s.stored, offered - s.stored, round(age, 1)])
        next_t = s.t + every_s
    return out


def window_rates(
    samples: list[Sample], t_from: float, t_to: float, due_s: list[float]
) -> dict[str, float]:
    """Offered and stored msg/s, and CPU share of a core per process, between the samples
    closest inside [t_from, t_to] (the steady part: after the first interval, in which every
    station appears for the first time)."""
    inside = [s for s in samples if t_from <= s.t <= t_to]
    if len(inside) < 2:
        return {}
    a, b = inside[0], inside[-1]
    span = b.t - a.t
    offered = bisect_right(due_s, b.t) - bisect_right(due_s, a.t)
    out = {
        "window_s": round(span, 1),
        "offered_msg_s": round(offered / span, 1),
        "stored_msg_s": round((b.stored - a.stored) / span, 1),
    }
    for k in a.cpu:
        out[f"cpu_{k}_pct"] = round(100 * (b.cpu[k] - a.cpu[k]) / span, 1)
    return out


def tick_figures(lines: list[dict], t_from: float, t_to: float) -> dict[str, float]:
    ticks = sorted(x["tick_s"] for x in lines if t_from <= x["t"] <= t_to)
    if not ticks:
        return {"ticks": 0}
    return {
        "ticks": len(ticks),
        "tick_p50_s": ticks[len(ticks) // 2],
        "tick_max_s": ticks[-1],
        "tick_mean_s": round(sum(ticks) / len(ticks), 4),
    }


def wait_stored(sampler: Sampler, total: int, stall_s: float) -> Sample:
    """Sample until ``total`` readings are stored or the count stops growing for ``stall_s``."""
    last, since = sampler.sample(), time.time()
    while last.stored < total:
        time.sleep(1.0)
        s = sampler.sample()
        if s.stored != last.stored:
            since = time.time()
        elif time.time() - since > stall_s:
            return s
        last = s
    return last


def log_problems(log: Path) -> dict[str, object]:
    """Counts of the collector's warnings and errors, and the first ones (its log is in a
    temporary folder that goes at the end of the run)."""
    text = log.read_text(errors="replace") if log.exists() else ""
    lines = text.splitlines()
    problems = [x for x in lines if " WARNING " in x or " ERROR " in x]
    return {
        "warning": sum(" WARNING " in x for x in lines),
        "error": sum(" ERROR " in x for x in lines),
        "skipped_or_missed_jobs": sum("missed by" in x or "skipped" in x for x in lines),
        "first": [x[:300] for x in problems if "skipped" not in x][:8],  # the log goes with tmp
    }
