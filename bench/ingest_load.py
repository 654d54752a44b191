"""Load for the ingest benchmark: an inventory of N stations, their telemetry, and a lean
MQTT 3.1.1 publisher process.

The publisher writes pre-encoded PUBLISH packets straight to the socket (QoS 0, or QoS 1 with a
window of unacknowledged packet ids), so the load generator costs ~2 µs of CPU per message and
the machine's cores go to the broker and the consumer under test. Each station's messages come
from one publisher, in order, 1 s apart in ``ts``, so (station, ts) is unique: every message is
one distinct InfluxDB point and the count in InfluxDB is the count delivered.
"""

from __future__ import annotations

import random
import re
import socket
import struct
import time
from collections.abc import Callable
from pathlib import Path

from loaxa.payloads import Audio, Cluster, ClusterKind, Power, Telemetry, to_json
from loaxa.topics import Kind, station_topic

PROVINCE = "bench-prov"
_COMMUNES = 100  # stations are spread over this many communes
PROBE = 999_999  # readiness-probe stations: PROBE, PROBE-1, ... (in the inventory, no load)
PROBES = 8  # one per collector process at most (each in its own commune)


def station_id(i: int) -> str:
    return f"st-{i:06d}"


def commune_of(i: int) -> str:
    return f"{10000 + i % _COMMUNES:05d}"


def partition_filters(part: int, parts: int) -> list[str]:
    """Topic filters of one collector out of ``parts``: whole communes, so each station's
    messages all reach the one collector that owns its health."""
    codes = [commune_of(c) for c in range(_COMMUNES) if c % parts == part]
    return [f"loaxa/v1/{PROVINCE}/{code}/+/+" for code in codes]


def write_inventory(path: Path, stations: int) -> Path:
    """A one-province inventory (format v1) with ``stations`` stations, daily windows."""
    out = [
        "[province]",
        'code = "99"',
        f'slug = "{PROVINCE}"',
        'name = "Bench"',
        'department = "Bench department"',
        'timezone = "Asia/Ho_Chi_Minh"',
        "[[schedules]]",
        'id = "daily"',
        'windows = ["05:30-06:30", "11:00-12:00", "17:00-18:30"]',
        "[[technicians]]",
        'id = "tech"',
        'name = "Bench Tech"',
        'phone = "+84912345678"',
    ]
    for c in range(min(stations, _COMMUNES)):
        code = commune_of(c)
        out += ["[[communes]]", f'code = "{code}"', f'name = "Xã {code}"']
        out += ['technicians = ["tech"]', 'schedule = "daily"']
    for i in [*range(stations), *range(PROBE - PROBES + 1, PROBE + 1)]:
        out += ["[[stations]]", f'id = "{station_id(i)}"', f'commune = "{commune_of(i)}"']
        out += [f'name = "Đài {i}"', 'clusters = ["wired", "fm"]', "lat = 22.6", "lon = 106.2"]
        out += ['position = "demo"']
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return path


def telemetry(i: int, seq: int, ts: int, rng: random.Random) -> Telemetry:
    """Realistic readings of station ``i``: a level while on air, mains (sometimes battery)."""

    def clusters(on_air: bool) -> list[Cluster]:
        return [
            Cluster(id=1, kind=ClusterKind.WIRED, relay_on=on_air, rms_dbfs=-22.0 + rng.random()),
            Cluster(id=2, kind=ClusterKind.FM, relay_on=on_air),
        ]

    return reading(station_id(i), seq, ts, rng, clusters)


def reading(
    station: str, seq: int, ts: int, rng: random.Random, clusters: Callable[[bool], list[Cluster]]
) -> Telemetry:
    """One telemetry reading: on air 60 % of the time, on battery 3 %; ``clusters(on_air)``."""
    on_air = rng.random() < 0.6
    battery = rng.random() < 0.03
    return Telemetry(
        station=station,
        session=1,
        seq=seq,
        ts=ts,
        uptime_s=86_400 + seq,
        agent_uptime_s=3_600 + seq,
        amp="on" if on_air else "off",
        clusters=clusters(on_air),
        audio=Audio(
            rms_dbfs=round(-20.0 - 4 * rng.random(), 2) if on_air else -72.5,
            peak_dbfs=round(-3.0 - rng.random(), 2) if on_air else -60.0,
            source="pcm",
        ),
        power=Power(
            mains_v=None if battery else round(220 + 5 * rng.random(), 1),
            battery_v=round(12.4 + 0.6 * rng.random(), 2),
            on_battery=battery,
        ),
        temp_c=round(30 + 5 * rng.random(), 1),
    )


STEP_MS = 100  # between one station's readings: a station's run spans a few seconds


def messages(stations: range, per_station: int, now_ms: int, seed: int) -> list[tuple[str, bytes]]:
    """(topic, payload) of ``per_station`` readings for each station, interleaved by time;
    the last readings are stamped ``now_ms``."""
    rng = random.Random(seed)
    start = now_ms - (per_station - 1) * STEP_MS
    topics = {
        i: station_topic(PROVINCE, commune_of(i), station_id(i), Kind.TELEMETRY) for i in stations
    }
    return [
        (topics[i], to_json(telemetry(i, k, start + k * STEP_MS, rng)))
        for k in range(per_station)
        for i in stations
    ]


_TS = re.compile(rb'"ts":(\d+)')


def restamp(items: list[tuple[str, bytes]], shift_ms: int) -> list[tuple[str, bytes]]:
    """The same readings ``shift_ms`` later: each run sends fresh readings (a live fleet whose
    clocks are right), not ones that have aged while earlier runs went on."""

    def later(m: re.Match[bytes]) -> bytes:
        return b'"ts":%d' % (int(m.group(1)) + shift_ms)

    return [(t, _TS.sub(later, p, count=1)) for t, p in items]


# --- MQTT 3.1.1 on a bare socket (only what publishing needs) --------------------------
def _remaining(n: int) -> bytes:
    out = bytearray()
    while True:
        n, digit = n // 128, n % 128
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _string(s: bytes) -> bytes:
    return struct.pack("!H", len(s)) + s


def publish_packet(topic: str, payload: bytes, qos: int, pid: int) -> bytes:
    body = _string(topic.encode()) + (struct.pack("!H", pid) if qos else b"") + payload
    return bytes([0x30 | (qos << 1)]) + _remaining(len(body)) + body


def _connect(port: int, client_id: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    body = _string(b"MQTT") + bytes([4, 0x02]) + struct.pack("!H", 60) + _string(client_id.encode())
    sock.sendall(bytes([0x10]) + _remaining(len(body)) + body)
    ack = _read_exact(sock, 4)
    if ack[0] != 0x20 or ack[3] != 0:
        raise ConnectionError(f"CONNACK refused: {ack.hex()}")
    return sock


def _read_exact(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("broker closed the connection")
        buf += chunk
    return buf


def publish_all(
    port: int,
    client_id: str,
    items: list[tuple[str, bytes]],
    qos: int,
    window: int = 2000,
    burst: int = 100,
) -> float:
    """Publish ``items`` in order; QoS 1 waits for every PUBACK. Returns the seconds taken."""
    sock = _connect(port, client_id)
    start = time.perf_counter()
    unacked, pending = 0, b""
    for n, (topic, payload) in enumerate(items, 1):
        unacked += qos
        pending += publish_packet(topic, payload, qos, n % 65535 + 1)
        if n % burst == 0:
            sock.sendall(pending)
            pending = b""
            while qos and unacked > window:
                unacked -= _count_pubacks(sock)
    if pending:
        sock.sendall(pending)
    while qos and unacked > 0:
        unacked -= _count_pubacks(sock)
    if not qos:  # a PINGREQ answered means the broker has read every PUBLISH before it
        sock.sendall(b"\xc0\x00")
        while _read_exact(sock, 2) != b"\xd0\x00":
            pass
    seconds = time.perf_counter() - start
    sock.sendall(b"\xe0\x00")  # DISCONNECT
    sock.close()
    return seconds


_tail = bytearray()


def _count_pubacks(sock: socket.socket) -> int:
    """Read what arrived; count complete PUBACKs (4 bytes each, 0x40 0x02 pid)."""
    global _tail
    data = _tail + sock.recv(65536)
    if len(data) == len(_tail):
        raise ConnectionError("broker closed the connection")
    whole = len(data) // 4 * 4
    if any(data[j] != 0x40 for j in range(0, whole, 4)):
        raise ConnectionError("unexpected packet from the broker while publishing")
    _tail = bytearray(data[whole:])
    return whole // 4
