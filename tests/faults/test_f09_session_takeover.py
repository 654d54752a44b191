"""Case 9: reconnect storms, client-id takeover and a Last Will delivered after a newer
``online``, with the real agent Publisher, real Mosquitto and the in-process collector.

Sparkplug's bdSeq rule, as loaxa applies it (loaxa/payloads.py ``Status``): every connection
attempt takes a new session number, the Will carries it, and the collector ignores a status
whose session is older than the newest ``online``.

Asserted: after a storm of takeovers (another client connecting with the agent's client id, the
broker disconnecting the agent, the agent reconnecting with a new session) the station is
operating, no incident was opened (drops shorter than damping), and nothing the agent queued is
lost; a stale Will or ``online`` of an older session changes nothing (counted as stale); a real
crash (connection lost without DISCONNECT, Will of the current session) is detected as DOWN.
"""

from __future__ import annotations

import socket

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from agent.mqtt_config import MqttConfig, StationConfig
from agent.publisher import Publisher
from agent.queue import OfflineQueue
from agent.state import AgentState
from collector.health.events import State
from loaxa.topics import Kind
from tests.faults.collector_rig import (
    AgentLike,
    RunningCollector,
    now_ms,
    rows,
    status,
    write_config,
)
from tests.faults.report import record
from tests.servers import wait_until

SID, COMMUNE = "cb-01267", "01273"
CRASHER, CRASHER_COMMUNE = "cb-01282", "01273"


def _agent(tmp_path, port: int) -> Publisher:
    cfg = MqttConfig(host="127.0.0.1", port=port, keepalive_s=5, retry_min_s=0.05, retry_max_s=0.3)
    station = StationConfig(id=SID, province="cao-bang", commune=COMMUNE)
    queue = OfflineQueue(tmp_path / "queue.sqlite", 10_000_000)
    return Publisher(station, cfg, queue, AgentState(tmp_path / "state"))


def _take_over(port: int, client_id: str) -> None:
    """Connect with the agent's client id (the broker drops the agent), then leave cleanly."""
    impostor = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
    impostor.connect("127.0.0.1", port, 30)
    impostor.loop_start()
    try:
        wait_until(impostor.is_connected, 10, what="impostor connected")
    finally:
        impostor.disconnect()
        impostor.loop_stop()


def _station(collector, sid: str):
    with collector.health._lock:
        rt = collector.health.engine.stations[sid]
        return rt.state, rt.session, rt.incident


@pytest.mark.parametrize("takeovers", [5, pytest.param(60, marks=pytest.mark.slow)])
def test_storm_takeover_and_stale_will(tmp_path, mosquitto, influxdb, takeovers):
    config = write_config(tmp_path, mosquitto.port, influxdb.url)
    pub = _agent(tmp_path, mosquitto.port)
    other = AgentLike(mosquitto.port, "stale-will-source")
    base = now_ms() - takeovers * 1000
    sent = 0
    try:
        with RunningCollector(config) as collector:
            engine = collector.health.engine
            wait_until(lambda: collector.mqtt.connected, 10, what="collector connected")
            pub.start()
            wait_until(
                lambda: _station(collector, SID)[0] is State.OPERATING, 15, what="station operating"
            )
            first_session = pub.session
            for i in range(takeovers):
                pub.publish(Kind.TELEMETRY, {"agent_uptime_s": i}, base + i * 1000)
                sent += 1
                before = pub.session
                _take_over(mosquitto.port, pub.client_id)
                wait_until(
                    lambda b=before: pub.connected and pub.session > b,
                    15,
                    what="agent reconnected with a new session",
                )
            wait_until(
                lambda: _station(collector, SID)[1] == pub.session,
                15,
                what="collector saw the newest session",
            )
            wait_until(
                lambda: _station(collector, SID)[0] is State.OPERATING,
                15,
                what="operating after the storm",
            )

            # A Will (and an online) of older sessions, delivered late: ignored.
            stale_before = engine.counters["stale_status"]
            current = pub.session
            for old, state in ((current - 1, "offline"), (first_session, "online")):
                other.send(SID, COMMUNE, Kind.STATUS, status(SID, old, state))
            wait_until(
                lambda: engine.counters["stale_status"] >= stale_before + 2,
                10,
                what="stale statuses counted",
            )
            state_after_stale, session_after_stale, incident = _station(collector, SID)

            # None missed: a crash (no DISCONNECT) of another station's agent is DOWN at once.
            crash_session = 7
            crasher = paho.Client(CallbackAPIVersion.VERSION2, client_id="crasher")
            crasher.will_set(
                f"loaxa/v1/cao-bang/{CRASHER_COMMUNE}/{CRASHER}/status",
                status(CRASHER, crash_session, "offline"),
                qos=1,
                retain=True,
            )
            crasher.connect("127.0.0.1", mosquitto.port, 30)
            crasher.loop_start()
            wait_until(crasher.is_connected, 10, what="crasher connected")
            crasher.publish(
                f"loaxa/v1/cao-bang/{CRASHER_COMMUNE}/{CRASHER}/status",
                status(CRASHER, crash_session, "online"),
                qos=1,
                retain=True,
            ).wait_for_publish(10)
            wait_until(
                lambda: _station(collector, CRASHER)[0] is State.OPERATING,
                10,
                what="crasher operating",
            )
            crasher.loop_stop()
            crasher.socket().shutdown(socket.SHUT_RDWR)  # power cut: no DISCONNECT packet
            crasher.socket().close()
            wait_until(
                lambda: _station(collector, CRASHER)[0] is State.DOWN,
                15,
                what="crash detected as DOWN",
            )
            wait_until(lambda: len(pub.queue) == 0, 15, what="agent queue drained")
            stale_ignored = engine.counters["stale_status"] - stale_before
            downs = sum(1 for t in engine.transitions[SID] if t.state is State.DOWN)
    finally:
        pub.stop()
        other.close()
    stored = wait_until(
        lambda: rows(influxdb, f"SELECT seq FROM telemetry WHERE station = '{SID}'"),
        30,
        what="telemetry stored",
    )
    wait_until(
        lambda: len(rows(influxdb, f"SELECT seq FROM telemetry WHERE station = '{SID}'")) == sent,
        30,
        what="every reading stored",
    )
    record(
        f"f09 reconnect storm ({takeovers} takeovers)",
        sessions=pub.session - first_session,
        down_transitions=downs,
        stale_ignored=stale_ignored,
        incidents=0 if incident is None else 1,
        sent=sent,
        stored=len(stored) if stored else 0,
        lost=0,
        crash_detected=1,
    )
    assert pub.session - first_session >= takeovers
    assert state_after_stale is State.OPERATING and session_after_stale == current
    assert incident is None
    assert stale_ignored == 2
