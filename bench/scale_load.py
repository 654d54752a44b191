"""Load of the scale benchmark: a synthetic fleet publishing on a schedule, in real time.

Every MQTT station of a ``synthetic_inventory`` (stations behind a serial gateway have no
agent and are left out) reports once per ``interval_s``; its phase is drawn uniformly over the
interval, so the fleet's messages are spread evenly, as a real fleet's are. Readings are real
``loaxa.payloads.Telemetry`` with the station's own clusters from the inventory, encoded
beforehand with a placeholder ``ts``; the publisher writes the planned send time into each one
as it sends it (a reading taken at that moment) over one lean MQTT 3.1.1 QoS 1 connection
(``bench/ingest_load.py``: pre-encoded PUBLISH packets, a window of unacknowledged ids).
"""

from __future__ import annotations

import random
import select
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.ingest_load import _connect, publish_packet, reading
from loaxa.payloads import Cluster, ClusterKind, Telemetry, to_json
from loaxa.sim.inventory_gen import synthetic_inventory, write_toml
from loaxa.topics import Kind, station_topic

_TS_PLACEHOLDER = 999_999_999_999_9  # 13 digits, as wide as a real ms timestamp
_TS_BYTES = b'"ts":%d' % _TS_PLACEHOLDER


@dataclass(frozen=True)
class Planned:
    """One reading: when to send it (ms after the start) and its bytes around ``ts``."""

    offset_ms: int
    topic: str
    head: bytes  # payload up to and including '"ts":'
    tail: bytes  # payload after the ts digits

    def payload(self, ts_ms: int) -> bytes:
        return self.head + str(ts_ms).encode() + self.tail


def write_scale_inventory(path: Path, stations: int, interval_s: int) -> dict[str, Any]:
    """Every station with its own agent: the generator's serial gateways are taken out."""
    inv = synthetic_inventory(stations, seed=6, telemetry_interval_s=interval_s)
    inv["upstreams"] = []
    for st in inv["stations"]:
        st.pop("upstream", None)
        st.pop("address", None)
    write_toml(inv, path, how=f"(bench_scale: --stations {stations})")
    return inv


def agent_stations(inv: dict[str, Any]) -> list[dict[str, Any]]:
    """Stations that publish over MQTT (not behind a serial gateway)."""
    return [s for s in inv["stations"] if "address" not in s]


def _reading(station: dict[str, Any], seq: int, rng: random.Random) -> Telemetry:
    def clusters(on_air: bool) -> list[Cluster]:
        return [
            Cluster(
                id=k + 1,
                kind=ClusterKind(kind),
                relay_on=on_air,
                rms_dbfs=round(-22.0 + rng.random(), 2) if on_air else None,
            )
            for k, kind in enumerate(station["clusters"])
        ]

    return reading(station["id"], seq, _TS_PLACEHOLDER, rng, clusters)


def plan(inv: dict[str, Any], interval_s: float, intervals: int, seed: int = 6) -> list[Planned]:
    """``intervals`` readings per agent station at its own phase, ordered by send time."""
    rng = random.Random(seed)
    province, interval_ms = inv["province"]["slug"], int(interval_s * 1000)
    out = []
    for st in agent_stations(inv):
        topic = station_topic(province, st["commune"], st["id"], Kind.TELEMETRY)
        phase = rng.randrange(interval_ms)
        for k in range(intervals):
            raw = to_json(_reading(st, k, rng))
            head, tail = raw.split(_TS_BYTES, 1)
            out.append(Planned(phase + k * interval_ms, topic, head + b'"ts":', tail))
    out.sort(key=lambda p: p.offset_ms)
    return out


@dataclass
class PublishReport:
    sent: int = 0
    acked: int = 0
    max_late_ms: float = 0.0  # how far behind its schedule the publisher fell (0: on time)
    seconds: float = 0.0


def publish_on_schedule(
    port: int, client_id: str, items: list[Planned], t0_ms: int, window: int = 2000
) -> PublishReport:
    """Send each item at ``t0_ms + offset_ms`` (wall clock) stamped with that time, QoS 1;
    return once every PUBACK is in. ``t0_ms`` is in the future when called."""
    sock = _connect(port, client_id)
    sock.setblocking(False)
    rep, tail = PublishReport(), bytearray()
    start, i, n = time.perf_counter(), 0, len(items)
    while i < n or rep.acked < rep.sent:
        now_ms = time.time() * 1000
        batch = []
        while i < n and t0_ms + items[i].offset_ms <= now_ms and rep.sent - rep.acked < window:
            it = items[i]
            due = t0_ms + it.offset_ms
            rep.max_late_ms = max(rep.max_late_ms, now_ms - due)
            batch.append(publish_packet(it.topic, it.payload(due), 1, rep.sent % 65535 + 1))
            rep.sent, i = rep.sent + 1, i + 1
        if batch:
            _send_all(sock, b"".join(batch))
        wait_s = 0.05 if i >= n else max(0.0, (t0_ms + items[i].offset_ms - now_ms) / 1000)
        readable, _, _ = select.select([sock], [], [], min(wait_s, 0.05))
        if readable:
            rep.acked += _read_pubacks(sock, tail)
    rep.seconds = time.perf_counter() - start
    sock.setblocking(True)
    sock.sendall(b"\xe0\x00")  # DISCONNECT
    sock.close()
    return rep


def _send_all(sock: socket.socket, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            view = view[sock.send(view) :]
        except BlockingIOError:
            select.select([], [sock], [], 1.0)


def _read_pubacks(sock: socket.socket, tail: bytearray) -> int:
    """Count complete PUBACKs (0x40 0x02 pid) in what arrived; keep a partial one in ``tail``."""
    try:
        chunk = sock.recv(65536)
    except BlockingIOError:
        return 0
    if not chunk:
        raise ConnectionError("broker closed the connection")
    tail += chunk
    whole = len(tail) // 4 * 4
    if any(tail[j] != 0x40 for j in range(0, whole, 4)):
        raise ConnectionError("unexpected packet from the broker while publishing")
    del tail[:whole]
    return whole // 4
