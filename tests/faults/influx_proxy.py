"""An HTTP proxy in front of the real InfluxDB that answers writes with injected faults.

``proxy.fault`` decides each ``POST /write`` (other requests always pass through)::

    None                              forward to InfluxDB, return its answer
    Status(code, body, headers, n)    answer ``code`` instead, ``n`` times (None: until cleared)
    RejectLine(index, status)         forward all lines but ``index``, answer a partial write
                                      (422/400 naming that line, v2 error format: {"line": N})
    TooLarge(max_lines)               413 for bodies of more than ``max_lines`` lines
    BlackHole()                       read the request, never answer (until cleared)

``refuse()`` closes the listening socket (connection refused), ``accept()`` reopens it on the
same port. ``after_write`` (if set) runs after InfluxDB accepted a forwarded write and before
the answer goes back: case 5 kills the collector there. Every request is logged in ``log``
as (monotonic time, lines, answered status or "blackhole").
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Status:
    code: int
    body: str = '{"error":"injected"}'
    headers: dict[str, str] = field(default_factory=dict)
    times: int | None = None


@dataclass
class RejectLine:
    index: int
    status: int = 422


@dataclass
class TooLarge:
    max_lines: int


@dataclass
class BlackHole:
    pass


Fault = Status | RejectLine | TooLarge | BlackHole


class InfluxProxy:
    def __init__(self, target_url: str) -> None:
        target = urllib.parse.urlsplit(target_url)
        self.target = (target.hostname or "127.0.0.1", target.port or 8086)
        self.fault: Fault | None = None
        self.after_write: Callable[[], None] | None = None
        self.log: list[tuple[float, int, int | str]] = []
        self.released = threading.Event()
        self._lock = threading.Lock()
        self._conns: set[socket.socket] = set()  # open client connections (keep-alive)
        self._server = self._serve(0)
        self.port: int = self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _serve(self, port: int) -> ThreadingHTTPServer:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def setup(self) -> None:
                super().setup()
                with proxy._lock:
                    proxy._conns.add(self.connection)

            def finish(self) -> None:
                with proxy._lock:
                    proxy._conns.discard(self.connection)
                super().finish()

            def do_POST(self) -> None:
                proxy._handle(self)

            def do_GET(self) -> None:
                proxy._handle(self)

        server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        return server

    # -- controls ---------------------------------------------------------------------------
    def set(self, fault: Fault | None) -> None:
        self.released.clear()
        self.fault = fault
        if fault is None:
            self.released.set()

    def refuse(self) -> None:
        """Close the port and every kept-alive connection: the next write is refused."""
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            with suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def accept(self) -> None:
        self._server = self._serve(self.port)

    def stop(self) -> None:
        self.released.set()
        self.refuse()

    def statuses(self) -> list[int | str]:
        with self._lock:
            return [s for _, _, s in self.log]

    # -- request handling -------------------------------------------------------------------
    def _handle(self, req: BaseHTTPRequestHandler) -> None:
        length = int(req.headers.get("Content-Length") or 0)
        body = req.rfile.read(length) if length else b""
        is_write = req.command == "POST" and req.path.startswith("/write")
        if not is_write:
            self._answer(req, *self._forward(req, body))
            return
        lines = body.split(b"\n")
        fault = self.fault
        if isinstance(fault, Status):
            with self._lock:
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        self.fault = None
            self._logged(len(lines), fault.code)
            self._answer(req, fault.code, fault.body.encode(), fault.headers)
            return
        if isinstance(fault, BlackHole):
            self._logged(len(lines), "blackhole")
            self.released.wait(60)
            req.close_connection = True
            return
        if isinstance(fault, TooLarge) and len(lines) > fault.max_lines:
            self._logged(len(lines), 413)
            self._answer(req, 413, b'{"error":"Request Entity Too Large"}', {})
            return
        if isinstance(fault, RejectLine) and len(lines) > fault.index:
            bad = lines[fault.index].decode("utf-8", "replace")
            good = lines[: fault.index] + lines[fault.index + 1 :]
            status, data, headers = self._forward(req, b"\n".join(good))
            if status == 204:
                msg = f"unable to parse '{bad}': injected"
                data = json.dumps({"code": "invalid", "message": msg, "line": fault.index + 1})
                status, data = fault.status, data.encode()
            self._logged(len(lines), status)
            self._answer(req, status, data, {})
            return
        status, data, headers = self._forward(req, body)
        self._logged(len(lines), status)
        if status == 204 and self.after_write is not None:
            self.after_write()
        self._answer(req, status, data, headers)

    def _forward(self, req: BaseHTTPRequestHandler, body: bytes) -> tuple[int, bytes, dict]:
        conn = http.client.HTTPConnection(*self.target, timeout=30)
        try:
            headers = {k: v for k, v in req.headers.items() if k.lower() != "content-length"}
            conn.request(req.command, req.path, body=body or None, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.read(), {"Content-Type": resp.getheader("Content-Type", "")}
        except OSError as err:
            return 502, json.dumps({"error": f"proxy: {err}"}).encode(), {}
        finally:
            conn.close()

    def _logged(self, lines: int, status: int | str) -> None:
        with self._lock:
            self.log.append((time.monotonic(), lines, status))

    @staticmethod
    def _answer(req: BaseHTTPRequestHandler, status: int, data: bytes, headers: dict) -> None:
        req.send_response(status)
        for key, value in headers.items():
            if value and key.lower() not in ("content-length", "transfer-encoding", "connection"):
                req.send_header(key, value)
        req.send_header("Content-Length", str(len(data)))
        req.end_headers()
        req.wfile.write(data)
