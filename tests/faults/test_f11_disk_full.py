"""Case 11: disk full under the agent's offline queue and under the collector's spool. Each sits
on its own small tmpfs (``mount -t tmpfs -o size=...``, as root; the test is skipped where mount
is not allowed), so SQLite gets a real ENOSPC / SQLITE_FULL. Space "returns" by remounting the
tmpfs larger (``-o remount,size=...``).

Agent: sampling goes on (``publish`` never raises), the queue's policy applies (the oldest are
evicted, the same rule as its byte bound; accounted exactly: queued + evicted == published), the
alarm is logged and, once connected, reported as a ``queue_evicted`` event with the count;
after space returns nothing more is evicted and the whole queue reaches InfluxDB.

Collector: the spool append fails, the alarm is raised (``/healthz`` check ``spool_not_full``
false), nothing is acknowledged, so the broker keeps the messages; after space returns every
message is stored exactly once (lost 0).
"""

from __future__ import annotations

import json
import logging
import subprocess
from pathlib import Path

import pytest

from agent.mqtt_config import MqttConfig, StationConfig
from agent.publisher import Publisher
from agent.queue import OfflineQueue
from agent.state import AgentState
from loaxa.topics import Kind
from tests.faults.collector_rig import (
    AgentLike,
    RunningCollector,
    now_ms,
    rows,
    telemetry,
    write_config,
)
from tests.faults.report import record
from tests.servers import wait_until

SID, COMMUNE = "cb-01267", "01273"


class SmallDisk:
    def __init__(self, path: Path, size: str) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        mount = ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)]
        done = subprocess.run(mount, capture_output=True, text=True, timeout=10)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")

    def grow(self, size: str) -> None:
        cmd = ["mount", "-o", f"remount,size={size}", str(self.path)]
        subprocess.run(cmd, check=True, timeout=10)

    def unmount(self) -> None:
        subprocess.run(["umount", "-l", str(self.path)], check=False, timeout=10)


@pytest.fixture
def small_disk(tmp_path):
    disks: list[SmallDisk] = []

    def make(name: str, size: str) -> SmallDisk:
        disks.append(SmallDisk(tmp_path / name, size))
        return disks[-1]

    yield make
    for disk in disks:
        disk.unmount()


@pytest.mark.parametrize(
    ("readings", "size"), [(10_000, "4m"), pytest.param(60_000, "16m", marks=pytest.mark.slow)]
)
def test_agent_queue_on_a_full_disk(
    tmp_path, small_disk, mosquitto, influxdb, caplog, readings, size
):
    disk = small_disk("agentfs", size)
    queue = OfflineQueue(disk.path / "queue.sqlite", 100_000_000)
    cfg = MqttConfig(host="127.0.0.1", port=mosquitto.port, retry_min_s=0.1, retry_max_s=0.5)
    station = StationConfig(id=SID, province="cao-bang", commune=COMMUNE)
    pub = Publisher(station, cfg, queue, AgentState(tmp_path / "state"))
    base = now_ms() - readings * 1000
    with caplog.at_level(logging.ERROR, logger="agent"):
        for i in range(readings):  # offline, sampling once a second: the disk fills up
            pub.publish(Kind.TELEMETRY, {"agent_uptime_s": i}, base + i * 1000)
    evicted, queued, failed = queue.evicted_total, len(queue), pub.stats["store_failed"]
    seqs = [m.seq for m in queue.peek(0, 1_000_000)]
    assert evicted > 0 and "disk full" in caplog.text  # the alarm
    assert failed == 0  # the reserve let SQLite evict: the policy held to the end
    assert queued + evicted + failed == readings  # every reading accounted for by the policy
    assert seqs == list(range(seqs[0], seqs[0] + queued))  # the newest kept, no holes

    disk.grow("64m")  # space returns: within 100 appends the queue has its reserve and the
    extra = 200  # configured bound back (agent/disk_reserve.py), then nothing more is evicted
    for i in range(readings, readings + extra):
        pub.publish(Kind.TELEMETRY, {"agent_uptime_s": i}, base + i * 1000)
        if i == readings + 99:
            evicted_at_100 = queue.evicted_total
    assert queue.max_bytes == 100_000_000 and queue.reserve.held
    assert queue.evicted_total == evicted_at_100  # none in the last 100 appends
    evicted_after = queue.evicted_total - evicted
    evicted, queued = queue.evicted_total, len(queue)
    assert queued + evicted + failed == readings + extra

    config = write_config(tmp_path, mosquitto.port, influxdb.url)
    with RunningCollector(config) as collector:
        wait_until(lambda: collector.mqtt.connected, 10, what="collector connected")
        pub.start()
        try:
            wait_until(lambda: len(queue) == 0, 60, what="agent queue delivered")
        finally:
            pub.stop()
        query = f"SELECT count(seq) FROM telemetry WHERE station = '{SID}'"
        wait_until(
            lambda: (rows(influxdb, query) or [{"count": 0}])[0]["count"] == queued,
            60,
            what="queue stored in InfluxDB",
        )
        event = wait_until(
            lambda: rows(influxdb, "SELECT * FROM event WHERE code = 'queue_evicted'"),
            30,
            what="queue_evicted event stored",
        )
    queue.close()
    record(
        f"f11 disk full: agent queue ({readings} readings, {size} tmpfs)",
        sent=readings + extra, stored=queued, dropped=evicted, store_failed=failed,
        evicted_after_space_returned=evicted_after, reported_dropped=event[0].get("value"),
        lost=readings + extra - queued - evicted - failed,
    )  # fmt: skip
    assert event[0].get("value") == evicted


@pytest.mark.parametrize("messages", [1500, pytest.param(10_000, marks=pytest.mark.slow)])
def test_collector_spool_on_a_full_disk(tmp_path, small_disk, mosquitto, influxdb, messages):
    disk = small_disk("spoolfs", "192k")
    config = write_config(tmp_path, mosquitto.port, influxdb.url)
    text = config.read_text().replace('path = "spool.sqlite"', f'path = "{disk.path}/spool.sqlite"')
    config.write_text(text)
    agent = AgentLike(mosquitto.port)
    base = now_ms() - messages * 1000
    try:
        with RunningCollector(config) as collector:
            wait_until(lambda: collector.mqtt.connected, 10, what="collector connected")
            influxdb.stop()  # nothing drains: the spool grows until the disk is full
            for i in range(messages):
                agent.send(SID, COMMUNE, Kind.TELEMETRY, telemetry(SID, i, base + i * 1000))
            report = wait_until(
                lambda: (r := collector.health_report()).checks["spool_not_full"] is False and r,
                60,
                what="spool disk-full alarm",
            )
            acked_at_alarm = collector.mqtt.acked
            failures = collector.pipeline.sink_failures
            disk.grow("64m")
            influxdb.start()
            query = f"SELECT count(seq) FROM telemetry WHERE station = '{SID}'"
            wait_until(
                lambda: (rows(influxdb, query) or [{"count": 0}])[0]["count"] == messages,
                120,
                what="every message stored after space returned",
            )
            wait_until(
                lambda: collector.health_report().checks["spool_not_full"], 30, what="alarm clear"
            )
    finally:
        agent.close()
    stored = rows(influxdb, query)[0]["count"]
    record(
        f"f11 disk full: collector spool ({messages} msgs, 192k tmpfs)",
        sent=messages, stored=stored, lost=messages - stored, acked_before_full=acked_at_alarm,
        store_retries=failures, alarm=json.dumps(report.checks["spool_not_full"]),
    )  # fmt: skip
    assert stored == messages and failures > 0 and acked_at_alarm < messages
