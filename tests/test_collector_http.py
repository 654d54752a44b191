"""collector.http and collector.metrics over a real loopback HTTP connection."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from collector.http import HealthReport, HttpConfig, HttpEndpoint
from collector.ingest.stats import IngestStats
from collector.ingest.validate import Accepted, Rejected, RejectReason
from collector.metrics import (
    CollectorMetrics,
    alerts_families,
    gauge,
    ingest_families,
    labelled_gauge,
    storage_families,
)
from loaxa.payloads import Telemetry
from loaxa.topics import Kind


def get(port: int, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


@pytest.fixture
def endpoint():
    state = {"broker": True, "depth": 0}
    stats = IngestStats(log_every_s=0)
    metrics = CollectorMetrics()
    metrics.add_callback(lambda: ingest_families(stats))
    metrics.add_callback(gauge("loaxa_mqtt_connected", "up", lambda: state["broker"]))
    metrics.add_callback(
        lambda: storage_families(
            {
                "spool_depth": state["depth"],
                "batches_written_total": 1,
                "write_seconds_total": 0.02,
                "points_written_total": 7,
            }
        )
    )
    metrics.add_callback(
        lambda: alerts_families({"channels": {"sms": {"sent": 1}}, "undelivered": 0})
    )
    metrics.add_callback(
        labelled_gauge("loaxa_serial_gateway_up", "gateway up", "gateway", lambda: {"gw-1": 1})
    )

    def health() -> HealthReport:
        if state.get("explode"):
            raise RuntimeError("check broke")
        return HealthReport(
            {"broker_connected": state["broker"], "influx_writable": True},
            {"spool_depth": state["depth"]},
        )

    server = HttpEndpoint(HttpConfig(port=0), health, metrics)
    server.start()
    yield server, state, stats, metrics
    server.stop()


def test_healthz_ok_then_503(endpoint):
    server, state, _, _ = endpoint
    status, body = get(server.port, "/healthz")
    assert status == 200
    assert json.loads(body) == {
        "ok": True,
        "checks": {"broker_connected": True, "influx_writable": True},
        "spool_depth": 0,
    }
    state["broker"] = False
    status, body = get(server.port, "/healthz")
    assert status == 503
    assert json.loads(body)["checks"]["broker_connected"] is False


def test_broken_check_answers_503(endpoint):
    server, state, _, _ = endpoint
    state["explode"] = True
    status, body = get(server.port, "/healthz")
    assert status == 503
    assert "check broke" in json.loads(body)["error"]


def test_metrics_text(endpoint):
    server, state, stats, _ = endpoint
    payload = Telemetry(station="cb-1", session=0, seq=0, ts=1000, agent_uptime_s=1)
    stats.record(
        [
            Accepted("cao-bang", "01267", "cb-1", Kind.TELEMETRY, payload, 3000),
            Rejected(RejectReason.SCHEMA, "bad", "cb-1"),
            Rejected(RejectReason.SCHEMA, "bad", "cb-1"),
        ],
        "test",
    )
    state["depth"] = 42
    status, body = get(server.port, "/metrics")
    text = body.decode()
    assert status == 200
    assert 'loaxa_ingest_messages_total{kind="telemetry"} 1.0' in text
    assert 'loaxa_ingest_rejected_total{reason="schema"} 2.0' in text
    assert 'loaxa_ingest_rejected_total{reason="oversize"} 0.0' in text
    assert 'loaxa_station_clock_skew_seconds{station="cb-1"} 2.0' in text
    assert "loaxa_spool_depth 42.0" in text
    assert 'loaxa_serial_gateway_up{gateway="gw-1"} 1.0' in text
    assert "loaxa_influx_write_seconds_count 1.0" in text
    assert "loaxa_influx_write_seconds_sum 0.02" in text
    assert "loaxa_influx_points_written_total 7.0" in text
    assert "loaxa_mqtt_connected 1.0" in text
    assert 'loaxa_alerts_total{channel="sms",outcome="sent"} 1.0' in text


def test_unknown_path_404(endpoint):
    server, *_ = endpoint
    assert get(server.port, "/nope")[0] == 404
