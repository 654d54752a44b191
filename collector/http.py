"""HTTP endpoint of the collector: ``GET /healthz`` and ``GET /metrics``, stdlib only.

``/healthz`` answers 200 when every check passes, else 503, with a JSON body::

    {"ok": false, "checks": {"broker_connected": true, "influx_writable": false, ...},
     "spool_depth": 1234}

``/metrics`` is the Prometheus text format (see ``collector/metrics.py``). The server runs in a
thread (``ThreadingHTTPServer``); a failing check function yields 503, never a crash.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from pydantic import BaseModel, ConfigDict, Field

from collector.metrics import CollectorMetrics

log = logging.getLogger("collector.http")


class HttpConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    enabled: bool = Field(True, description="serve /healthz and /metrics")
    host: str = Field("127.0.0.1", description="listen address (0.0.0.0 for Prometheus elsewhere)")
    port: int = Field(9478, ge=0, le=65535, description="listen port (0: any free port)")


@dataclass(frozen=True)
class HealthReport:
    checks: dict[str, bool]
    info: dict[str, object] = field(default_factory=dict)  # numbers worth seeing, not judged

    @property
    def ok(self) -> bool:
        return all(self.checks.values())

    def body(self) -> bytes:
        return json.dumps({"ok": self.ok, "checks": self.checks, **self.info}).encode()


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            try:
                report = self.server.health()
                status, body = (200 if report.ok else 503), report.body()
            except Exception as err:  # a broken check must still answer
                log.exception("health check failed")
                status, body = 503, json.dumps({"ok": False, "error": str(err)}).encode()
            self._send(status, body, "application/json")
        elif path == "/metrics":
            body, content_type = self.server.metrics.render()
            self._send(200, body, content_type)
        else:
            self._send(404, b"not found: try /healthz or /metrics\n", "text/plain")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # scrapes are not news
        log.debug(format, *args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    health: Callable[[], HealthReport]
    metrics: CollectorMetrics


class HttpEndpoint:
    def __init__(
        self, config: HttpConfig, health: Callable[[], HealthReport], metrics: CollectorMetrics
    ) -> None:
        self._server = _Server((config.host, config.port), _Handler)
        self._server.health = health
        self._server.metrics = metrics
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="collector-http", daemon=True
        )

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def start(self) -> None:
        self._thread.start()
        log.info("serving /healthz and /metrics on port %d", self.port)

    def stop(self) -> None:
        if self._thread.is_alive():  # shutdown() would wait forever for a loop never started
            self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
