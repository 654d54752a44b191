"""The upstream report adapter against a local http.server (REPORT_API.md v1)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from collector.export.config import UpstreamConfig
from collector.export.errors import DeliveryError
from collector.export.report import build_report
from collector.export.upstream import push_report, report_payload
from tests.servers import free_port
from tests.test_export_figures import DATA, INVENTORY, OCT, A, C


class Receiver:
    """A tiny endpoint that records each request and answers with ``status``."""

    def __init__(self, status: int = 201) -> None:
        self.status = status
        self.requests: list[tuple[dict[str, str], bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.requests.append((dict(self.headers), body))
                self.send_response(outer.status)
                self.end_headers()
                self.wfile.write(b'{"error": "quota"}' if outer.status >= 400 else b"{}")

            def log_message(self, *args) -> None:  # keep test output clean
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/api/report"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def _report():
    return build_report(INVENTORY, DATA, OCT, generated_ms=OCT.t1_ms + 1_800_000)


def test_push_sends_documented_payload(receiver):
    cfg = UpstreamConfig(enabled=True, url=receiver.url, token="s3cret")
    assert push_report(_report(), cfg) == 201
    headers, body = receiver.requests[0]
    assert headers["Content-Type"] == "application/json; charset=utf-8"
    assert headers["Authorization"] == "Bearer s3cret"
    assert headers["Idempotency-Key"] == "cao-bang:2026-10"
    doc = json.loads(body.decode("utf-8"))
    assert "Cao Bằng".encode() in body  # UTF-8, not \\u escapes
    assert (doc["schema"], doc["version"], doc["report_id"]) == (
        "loaxa.report",
        1,
        "cao-bang:2026-10",
    )
    assert doc["generated_at"] == "2026-11-01T00:30:00+07:00"
    assert doc["period"] == {
        "label": "2026-10",
        "kind": "month",
        "timezone": "Asia/Ho_Chi_Minh",
        "from": "2026-10-01T00:00:00+07:00",
        "to": "2026-11-01T00:00:00+07:00",
        "from_ms": OCT.t0_ms,
        "to_ms": OCT.t1_ms,
    }
    assert doc["summary"]["worst_communes"] == ["01273"]
    assert doc["summary"]["share_meeting_goal_percent"] == 0.0
    stations = {s["station"]: s for s in doc["stations"]}
    assert stations[A]["downtime_min"] == 130.75 and stations[A]["outages"] == 3
    assert stations[C]["availability_percent"] is None  # unknown is null, never 0
    assert [o["cause"] for o in doc["outages"]] == ["power", "audio_chain", "network"]
    assert doc["outages"][2]["end"] is None
    assert doc["communes"][0]["commune"] == "01273" and doc["communes"][0]["stations"] == 2


def test_payload_without_stations():
    doc = report_payload(_report(), include_stations=False)
    assert "stations" not in doc and "outages" not in doc and len(doc["communes"]) == 2


def test_refusal_is_a_delivery_error(receiver):
    receiver.status = 503
    with pytest.raises(DeliveryError, match=r"refused the report \(503\).*quota"):
        push_report(_report(), UpstreamConfig(enabled=True, url=receiver.url))


def test_unreachable_endpoint_is_a_delivery_error():
    cfg = UpstreamConfig(enabled=True, url=f"http://127.0.0.1:{free_port()}/x", timeout_s=2)
    with pytest.raises(DeliveryError, match="unreachable"):
        push_report(_report(), cfg)
