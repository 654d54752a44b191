"""CPU per message of each collector stage, in one process, without MQTT or InfluxDB.

    .venv/bin/python bench/bench_ingest_stages.py [--messages 40000] [--stations 2000]

Same load as ``bench_ingest.py`` (realistic telemetry from N stations). Stages, each timed in
CPU seconds (``time.process_time``, so other load on the machine adds little): the MQTT
network thread's share (MQTT 5 PUBLISH packets from memory through ``BufferedClient``, paho's
path and the lean path), validation (topic, inventory, pydantic), line protocol, the spool
append (SQLite, fsync), the health engine, and the whole ``Pipeline.process`` as the MQTT
worker calls it. Every stage runs batch by batch (2000 messages, the worker's ``max_batch``)
with the daemon's GC settings (``collector/daemon.py`` ``run``), so garbage lives as long as in
the daemon. Figures are printed and written to ``bench/results/ingest-stages-<UTC time>.json``,
never asserted.
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.ingest_load import _remaining, messages, write_inventory
from bench.results_file import write_results
from collector.health.engine import HealthEngine
from collector.health.store import HealthStore
from collector.ingest.buffered_client import BufferedClient
from collector.ingest.health_feed import HealthFeed
from collector.ingest.pipeline import Incoming, Pipeline
from collector.ingest.sink import StorageSink
from collector.ingest.stats import IngestStats
from collector.ingest.validate import Accepted, Limits, validate
from collector.inventory import load_inventory
from collector.storage.config import SpoolFullPolicy
from collector.storage.points import points_for_payload
from collector.storage.spool import Spool

BATCH = 2000


def cpu_us(n: int, run: Callable[[], object]) -> float:
    start = time.process_time()
    run()
    return 1e6 * (time.process_time() - start) / n


class _MemorySocket:
    """What paho reads from: the given bytes in 64 KiB reads, then "would block"."""

    def __init__(self, data: bytes) -> None:
        self._data, self._pos = data, 0

    def close(self) -> None:
        self._pos = len(self._data)

    def left(self) -> int:
        return max(0, len(self._data) - self._pos)

    def recv(self, n: int) -> bytes:
        if self._pos >= len(self._data):
            raise BlockingIOError
        self._pos += n
        return self._data[self._pos - n : self._pos]


def mqtt_receive(items: list[tuple[str, bytes]], lean: bool) -> float:
    """CPU per message of the network thread's part: MQTT 5 QoS 1 PUBLISH bytes -> queued."""
    from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

    packets = []
    for i, (topic, payload) in enumerate(items):
        name = topic.encode()
        pid = (i % 65535 + 1).to_bytes(2, "big")
        body = len(name).to_bytes(2, "big") + name + pid + b"\x00" + payload  # no properties
        packets.append(b"\x32" + _remaining(len(body)) + body)
    sock = _MemorySocket(b"".join(packets))
    client = BufferedClient(
        CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5, manual_ack=True
    )
    queued: list[tuple] = []  # what MqttIngest queues per message; the worker takes batches

    def on_publish(topic: str, payload: bytes, mid: int, qos: int) -> None:
        queued.append((Incoming(topic, payload, time.time_ns() // 1_000_000), mid, qos, 1))
        if len(queued) >= BATCH:
            queued.clear()

    client.on_message = lambda c, u, m: on_publish(m.topic, m.payload, m.mid, m.qos)
    if lean:
        client.on_fast_publish = on_publish
    client._sock = sock  # type: ignore[assignment]

    def run() -> None:
        while sock.left() or client._buffered():
            client.loop_read()

    return cpu_us(len(items), run)


def _loop() -> None:
    total = 0
    for i in range(10**6):
        total += i


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=40_000)
    ap.add_argument("--stations", type=int, default=2_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="loaxa-stages-") as tmp:
        work = Path(tmp)
        inventory = load_inventory(write_inventory(work / "inventory.toml", args.stations))
        now = int(time.time() * 1000)
        items = messages(range(args.stations), max(1, args.messages // args.stations), now, 6)
        n = len(items)
        incoming = [Incoming(t, p, now) for t, p in items]
        limits = Limits()
        # A fixed pure-Python loop: shows how much a busy or shared machine inflates the rest.
        figures: dict[str, float] = {"calibration_loop_ns": 1e3 * cpu_us(10**6, _loop)}
        figures["mqtt_receive_paho"] = mqtt_receive(items, lean=False)
        figures["mqtt_receive_lean"] = mqtt_receive(items, lean=True)
        # As the daemon runs: start-up objects frozen, fewer young collections.
        gc.collect()
        gc.freeze()
        gc.set_threshold(100_000, 50, 100)
        spool = Spool(work / "spool.sqlite", 1 << 34, SpoolFullPolicy.REJECT, fsync=True)
        engine = HealthEngine(inventory)
        cpu = dict.fromkeys(
            ["validate", "line_protocol", "spool_append_fsync", "health_observe"], 0.0
        )
        wall = 0.0
        for i in range(0, n, BATCH):  # stage by stage, one batch at a time, as the worker
            t = time.process_time()
            accepted = [
                validate(m.topic, m.payload, now, inventory, limits)
                for m in incoming[i : i + BATCH]
            ]
            t2 = time.process_time()
            lines = [x for a in accepted for x in points_for_payload(a.payload, "p", a.commune)]
            t3, w3 = time.process_time(), time.perf_counter()
            spool.append(lines)
            t4, w4 = time.process_time(), time.perf_counter()
            for a in accepted:
                engine.observe(a.payload, a.received_ms)
            t5 = time.process_time()
            for key, dt in zip(cpu, (t2 - t, t3 - t2, t4 - t3, t5 - t4), strict=True):
                cpu[key] += dt
            wall += w4 - w3
            assert all(isinstance(a, Accepted) for a in accepted), "the load must be valid"
        figures.update({k: 1e6 * v / n for k, v in cpu.items()})
        figures["spool_append_wall"] = 1e6 * wall / n
        store = HealthStore(work / "state.sqlite")
        full = Spool(work / "spool2.sqlite", 1 << 34, SpoolFullPolicy.REJECT, fsync=True)
        feed = HealthFeed(HealthEngine(inventory), store, full, None)
        pipeline = Pipeline(
            lambda: inventory, limits, StorageSink(full, feed.observe), IngestStats()
        )

        def run_pipeline() -> None:
            for i in range(0, n, BATCH):
                pipeline.process(incoming[i : i + BATCH], "bench")

        figures["pipeline_process"] = cpu_us(n, run_pipeline)
        figures["health_snapshot_ms"] = 1e-3 * cpu_us(1, feed.tick)
        store.close()
        spool.close()
        full.close()
    for k, v in figures.items():
        unit = {"_ms": "ms per tick", "_ns": "ns/iteration"}.get(k[-3:], "µs/msg")
        print(f"{k:<22} {v:>9.1f} {unit}")
    print(f"=> one core, pipeline only: {1e6 / figures['pipeline_process']:,.0f} msg/s")
    meta = {"messages": n, "stations": args.stations}
    write_results("ingest-stages", {"meta": meta, "cpu": figures})


if __name__ == "__main__":
    main()
