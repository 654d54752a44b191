"""Case 10: a province-wide power cut. Every station sampled on battery with its 3G link down, so
each agent's offline queue holds a backlog; then power and links return everywhere at once: the
agents (real Publishers, in-process, each with its own SQLite queue and state) all start
together, against real Mosquitto and the in-process collector writing to real InfluxDB.

Agents jitter their first connection and every reconnect (agent/publisher.py), so the broker
sees them spread out, not in one instant. Asserted: every reading stored exactly once by key
(lost 0), every agent connected at the first attempt (no connection refused: no storm), the
collector's InfluxDB writer needed no retry. Recorded: connection spread and peak connections
per 100 ms, drain time, peak ingest rate.
"""

from __future__ import annotations

import time
from collections import Counter

import pytest

from agent.mqtt_config import MqttConfig, StationConfig
from agent.publisher import Publisher
from agent.queue import OfflineQueue
from agent.state import AgentState
from loaxa.topics import Kind
from tests.faults.collector_rig import (
    RunningCollector,
    fleet_inventory,
    now_ms,
    rows,
    write_config,
)
from tests.faults.report import record
from tests.servers import wait_until

CASES = [
    pytest.param(50, 20, id="fast"),
    # 4 h at one reading a minute. 150 agents: paho's select() cannot watch a descriptor
    # >= 1024, and each in-process agent holds ~6 (one agent per station box in real life).
    pytest.param(150, 240, id="slow", marks=pytest.mark.slow),
]


def _agents(tmp_path, port: int, stations: list[tuple[str, str]]) -> list[Publisher]:
    cfg = MqttConfig(host="127.0.0.1", port=port, keepalive_s=30, retry_min_s=1.0,
                     retry_max_s=30.0)  # fmt: skip
    out = []
    for sid, commune in stations:
        folder = tmp_path / "agents" / sid
        queue = OfflineQueue(folder / "queue.sqlite", 10_000_000, synchronous="NORMAL")
        station = StationConfig(id=sid, province="cao-bang", commune=commune)
        out.append(Publisher(station, cfg, queue, AgentState(folder / "state")))
    return out


def _stored(influxdb) -> int:
    got = rows(influxdb, "SELECT count(seq) FROM telemetry WHERE station =~ /^cb-f/")
    return int(got[0]["count"]) if got else 0


@pytest.mark.parametrize(("stations", "backlog"), CASES)
def test_province_returns_at_once(tmp_path, mosquitto, influxdb, stations, backlog):
    inventory, fleet = fleet_inventory(tmp_path, stations)
    config = write_config(tmp_path, mosquitto.port, influxdb.url, inventory=inventory)
    agents = _agents(tmp_path, mosquitto.port, fleet)
    start_ts = now_ms() - backlog * 60_000
    for pub in agents:  # the outage: readings a minute apart, stored while the link was down
        for i in range(backlog):
            pub.publish(Kind.TELEMETRY, {"agent_uptime_s": i * 60}, start_ts + i * 60_000)
    total = stations * backlog
    try:
        with RunningCollector(config) as collector:
            wait_until(lambda: collector.mqtt.connected, 10, what="collector connected")
            t0 = time.monotonic()
            for pub in agents:  # power is back everywhere at the same moment
                pub.start()
            connected_at: dict[int, float] = {}
            rates: list[float] = []
            last = [t0, 0, 0.0, 0]  # rate sample time, accepted then, stored-check time, stored

            def sample_then_done() -> bool:
                """Note connection times and ingest rate; True once everything is stored."""
                now = time.monotonic()
                for i, pub in enumerate(agents):
                    if i not in connected_at and pub.stats["connections"]:
                        connected_at[i] = now - t0
                if now - last[0] >= 0.5:
                    accepted = collector.stats.snapshot()[0].get("telemetry", 0)
                    rates.append((accepted - last[1]) / (now - last[0]))
                    last[0], last[1] = now, accepted
                if now - last[2] >= 0.25:
                    last[2], last[3] = now, _stored(influxdb)
                return last[3] >= total

            wait_until(sample_then_done, 600, what="the backlog of every agent stored")
            drain_s = time.monotonic() - t0
            wait_until(lambda: all(len(p.queue) == 0 for p in agents), 30, what="queues empty")
            storage = collector.storage.snapshot()
    finally:
        for pub in agents:
            pub.stop()
            pub.queue.close()
    per_bin = Counter(int(t * 10) for t in connected_at.values())
    failures = sum(p.stats["connect_failures"] for p in agents)
    record(
        f"f10 province power cut ({stations} agents x {backlog})",
        sent=total, stored=_stored(influxdb), lost=total - _stored(influxdb),
        connect_spread_s=max(connected_at.values()) - min(connected_at.values()),
        peak_connects_per_100ms=max(per_bin.values()), connect_failures=failures,
        drain_s=drain_s, peak_msgs_per_s=max(rates, default=0.0),
        influx_retries=storage.get("retries_total", 0),
    )  # fmt: skip
    assert _stored(influxdb) == total
    assert failures == 0 and len(connected_at) == stations
    assert storage.get("retries_total", 0) == 0
