"""One measured run of the ingest benchmark: a consumer under test, publishers, the count.

Protocol of a run (the same for every consumer, in the same broker and InfluxDB):

1. a fresh database; the consumer starts and subscribes (QoS 1 filter ``loaxa/v1/+/+/+/+``);
2. readiness: a probe reading (always the same station and ``ts``, so it is one point however
   often it is stored) is published every 0.2 s until InfluxDB holds it. A consumer that does
   not write (the bare counter) prints ``ready`` after its SUBACK instead;
3. the publisher processes (forked, payloads encoded beforehand) publish everything at once;
4. the clock stops when InfluxDB holds every message (count of ``telemetry`` points, polled
   every 0.2 s) or when the count stops growing for ``stall_s`` (then the rest is lost).

Rate = messages / (last count - first publish). CPU per message = CPU seconds of the process
(``/proc/<pid>/stat`` utime + stime, all threads) over the run / messages.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import subprocess
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

from bench.ingest_load import PROBE, PROVINCE, commune_of, publish_all, station_id
from loaxa.payloads import Telemetry, to_json
from loaxa.topics import Kind, station_topic

_TICK = os.sysconf("SC_CLK_TCK")
_CTX = mp.get_context("fork")  # children inherit the encoded payloads


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


@dataclass
class Result:
    consumer: str
    qos: int
    messages: int
    stored: int = 0
    seconds: float = 0.0
    cpu_s: dict[str, float] = field(default_factory=dict)
    publish_s: float = 0.0
    note: str = ""

    @property
    def lost(self) -> int:
        return self.messages - self.stored

    @property
    def rate(self) -> float:
        return self.stored / self.seconds if self.seconds else 0.0

    def cpu_us_per_msg(self, who: str) -> float:
        return 1e6 * self.cpu_s.get(who, 0.0) / max(1, self.stored)

    def as_dict(self) -> dict[str, object]:
        return {
            "consumer": self.consumer,
            "qos": self.qos,
            "messages": self.messages,
            "stored": self.stored,
            "lost": self.lost,
            "seconds": round(self.seconds, 3),
            "msg_per_s": round(self.rate),
            "publish_s": round(self.publish_s, 3),
            "cpu_us_per_msg": {k: round(self.cpu_us_per_msg(k), 1) for k in self.cpu_s},
            "note": self.note,
        }


class Influx:
    def __init__(self, url: str) -> None:
        self.url = url

    def query(self, q: str, db: str | None = None) -> dict:
        import json

        params = {"q": q, **({"db": db} if db else {})}
        data = urllib.parse.urlencode(params).encode()
        with urllib.request.urlopen(f"{self.url}/query", data=data, timeout=30) as r:
            return json.loads(r.read())

    def count(self, db: str, measurement: str = "telemetry") -> int:
        res = self.query(f'SELECT count("seq") FROM "{measurement}"', db)["results"][0]
        series = res.get("series")
        return int(series[0]["values"][0][1]) if series else 0


def probe_message(now_ms: int, k: int = 0) -> tuple[str, bytes]:
    """Readiness probe ``k``: a probe station's reading with a fixed seq and ts."""
    sid = station_id(PROBE - k)
    t = Telemetry(station=sid, session=1, seq=0, ts=now_ms, agent_uptime_s=1)
    return station_topic(PROVINCE, commune_of(PROBE - k), sid, Kind.TELEMETRY), to_json(t)


def _publisher(port: int, name: str, items, qos: int, go, out) -> None:
    go.wait()
    cpu0 = time.process_time()
    seconds = publish_all(port, name, items, qos)
    out.put((seconds, time.process_time() - cpu0))


def run_publishers(
    port: int, chunks: list[list[tuple[str, bytes]]], qos: int, on_start=None
) -> tuple[mp.Queue, list, float]:
    """Start one process per chunk; all begin together. Returns (results queue, procs, t0)."""
    go, out = _CTX.Event(), _CTX.Queue()
    procs = [
        _CTX.Process(target=_publisher, args=(port, f"bench-pub-{i}", c, qos, go, out))
        for i, c in enumerate(chunks)
    ]
    for p in procs:
        p.start()
    t0 = time.perf_counter()
    go.set()
    return out, procs, t0


def wait_stored(
    influx: Influx, db: str, expected: int, stall_s: float, procs=()
) -> tuple[int, float]:
    """Poll the count until ``expected`` or no progress for ``stall_s`` (or a consumer
    process died); returns (count, when it was last seen growing)."""
    last, last_change = -1, time.perf_counter()
    while True:
        n = influx.count(db)
        now = time.perf_counter()
        if n >= expected:
            return n, now
        if n != last:
            last, last_change = n, now
        elif now - last_change > stall_s or any(p.poll() is not None for p in procs):
            return n, last_change
        time.sleep(0.2)


def stop_process(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
