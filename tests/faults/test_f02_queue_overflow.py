"""Fault case 2: the link is down longer than the agent's queue can hold (a small
``max_bytes``). The queue stays within its byte bound and drops the oldest readings; the drop
count equals the gap in the delivered seqs and the ``queue_evicted`` event reports it; the
collector's health engine then shows the evicted part of the outage as UNKNOWN ("no data"),
neither DOWN nor on air, and the surviving backfill as on air (LINK_DOWN).

The agent, the TCP proxy and the broker are real; the readings' time is virtual (one a minute)
and the engine is fed exactly what the broker delivered, with the clock passed in, so an outage
of hours is judged in a second (collector/health is pure, README "Use")."""

from __future__ import annotations

import json

import pytest

from agent.mqtt_config import MqttConfig
from agent.publisher import Publisher
from agent.queue import ROW_OVERHEAD, OfflineQueue
from agent.state import AgentState
from collector.health.config import HealthConfig
from collector.health.engine import HealthEngine
from collector.health.events import State
from collector.inventory import load_inventory
from loaxa.payloads import ANY_PAYLOAD
from loaxa.sim.tcp_proxy import Mode
from loaxa.topics import Kind
from tests.faults import report
from tests.faults.stack import INVENTORY, STATIONS
from tests.servers import wait_until
from tests.test_agent_publisher import Recorder

MIN = 60_000
T0 = 1_790_000_000_000  # virtual time of the first reading
SID = "cb-01267"


class Clock:
    def __init__(self) -> None:
        self.ms = T0

    def __call__(self) -> float:
        return self.ms / 1000


def evictions(tap: Recorder) -> list[int]:
    return [e["value"] for e in tap.of("event") if e["code"] == "queue_evicted"]


def received(tap: Recorder) -> list:
    """Every message the broker delivered, in order, as loaxa.payloads models."""
    with tap._lock:
        raws = [json.dumps(m).encode() for _, m, _ in tap.messages]
    return [ANY_PAYLOAD.validate_json(raw) for raw in raws]


@pytest.mark.parametrize(
    "outage_min",
    [pytest.param(120, id="fast"), pytest.param(2000, id="slow", marks=pytest.mark.slow)],
)
def test_outage_longer_than_the_queue(
    no_leaked_threads, outage_min, tmp_path, mosquitto, broker_proxy
):
    tap = Recorder(mosquitto.port, "f02-tap")
    wait_until(tap.subscribed.is_set, 10, what="tap subscribed")
    clock = Clock()
    cfg = MqttConfig(
        host="127.0.0.1", port=broker_proxy.port, keepalive_s=5, retry_min_s=0.1, retry_max_s=0.3
    )
    max_bytes = 40 * (len(b'{"v":1}') + 400 + ROW_OVERHEAD)  # room for roughly 40 readings
    queue = OfflineQueue(tmp_path / "queue.sqlite", max_bytes, synchronous="NORMAL")
    pub = Publisher(STATIONS[SID], cfg, queue, AgentState(tmp_path / "state"), clock=clock)
    live, outage = 5, outage_min
    peak = 0
    try:
        pub.start()
        wait_until(lambda: pub.connected, 20, what="agent connected")
        for i in range(live):  # live readings, one a minute
            clock.ms = T0 + i * MIN
            pub.publish(Kind.TELEMETRY, {"agent_uptime_s": i}, clock.ms)
        wait_until(lambda: len(tap.of("telemetry")) == live, 20, what="live readings delivered")
        wait_until(lambda: len(queue) == 0, 20, what="live readings acknowledged")
        broker_proxy.set_mode(Mode.CUT)
        broker_proxy.reset()
        wait_until(lambda: not pub.connected, 20, what="link down")
        first_gap_seq = queue.next_seq
        for j in range(outage):  # the agent keeps sampling into its queue
            clock.ms = T0 + (live + j) * MIN
            pub.publish(Kind.TELEMETRY, {"agent_uptime_s": live + j}, clock.ms)
            peak = max(peak, queue.bytes)
            assert queue.bytes <= max_bytes  # the bound holds at every step
        clock.ms = T0 + (live + outage) * MIN + 10_000
        broker_proxy.set_mode(Mode.PASS)
        wait_until(lambda: [e for e in tap.of("event") if e["code"] == "queue_evicted"], 30,
                   what="queue_evicted event")  # fmt: skip
        wait_until(lambda: len(queue) == 0, 30, what="queue drained")
        # Appending that event to the full queue may itself push out one more reading; its
        # count is reported at the next connection: force one and collect every report.
        evicted = queue.evicted_total
        if queue.evicted_unreported:
            broker_proxy.reset()
            wait_until(lambda: sum(evictions(tap)) == evicted, 30, what="late eviction report")
        wait_until(lambda: len(queue) == 0, 30, what="queue drained")
    finally:
        pub.stop()
        queue.close()
        tap.close()
    delivered = sorted(m["seq"] for m in tap.of("telemetry") if m["seq"] >= first_gap_seq)
    gap = [s for s in range(first_gap_seq, first_gap_seq + outage) if s not in set(delivered)]
    assert evicted > 0 and len(gap) == evicted == sum(evictions(tap))
    assert gap == list(range(first_gap_seq, first_gap_seq + evicted))  # the oldest went first

    # The collector's judgement of what the broker delivered, on the readings' own clock.
    engine = HealthEngine(load_inventory(INVENTORY), HealthConfig())
    messages = received(tap)
    onlines = [i for i, p in enumerate(messages) if p.kind == "status" and p.state == "online"]
    lost_at = T0 + (live - 1) * MIN + 30_000  # the Will arrives when the link dies
    back = clock.ms
    for p in messages[: onlines[1]]:
        engine.observe(p, lost_at if p.kind == "status" and p.state == "offline" else p.ts)
    for now in range(T0 + live * MIN, back, 30_000):  # hours without a word from the station
        engine.tick(now)
    for p in messages[onlines[1] :]:
        engine.observe(p, back)
    engine.tick(back + HealthConfig().backfill_settle_s * 1000 + 1000)
    first_kept = T0 + (live + evicted) * MIN
    in_gap = [engine.state_at(SID, t) for t in range(lost_at + MIN + 1, first_kept, MIN)]
    kept = [engine.state_at(SID, t) for t in range(first_kept + 1, back - MIN, MIN)]
    assert set(in_gap) == {State.UNKNOWN}, set(in_gap)  # "no data", not up or down
    assert set(kept) == {State.LINK_DOWN}, set(kept)  # backfill: on air, link down
    report.record(
        f"f02 outage {outage} min > queue bound", sent=live + outage, stored=len(delivered) + live,
        dropped=evicted, gap=len(gap), lost=len(gap) - evicted, queue_peak_bytes=peak,
        queue_bound_bytes=max_bytes, unknown_min=len(in_gap),
    )  # fmt: skip
