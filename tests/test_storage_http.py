"""Failure classification and both write paths against a real local HTTP peer (http.server)."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from collector.storage import Storage, StorageConfig
from collector.storage.config import InfluxConfig, SpoolConfig
from collector.storage.line_protocol import encode_line
from collector.storage.writers import V1Writer, V2Writer
from tests.servers import wait_until

Reply = tuple[int, dict[str, str], bytes]


class Peer:
    """Records every request; ``respond(path, body)`` decides the reply (default 204)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.respond: Callable[[str, bytes], Reply] = lambda path, body: (204, {}, b"")
        self.close_after_reply = False
        peer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as InfluxDB

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                peer.requests.append((self.path, dict(self.headers), body))
                status, headers, data = peer.respond(self.path, body)
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                if peer.close_after_reply:
                    self.wfile.flush()
                    self.close_connection = True

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def lines(self) -> list[str]:
        return [x for _, _, body in self.requests for x in body.decode().split("\n") if x]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def peer():
    p = Peer()
    yield p
    p.close()


def storage_for(tmp_path, url: str, **influx) -> Storage:
    settings = dict(
        url=url,
        db="loaxa",
        batch_size=8,
        flush_interval_ms=20,
        retry_initial_ms=10,
        retry_max_ms=100,
    )
    settings.update(influx)
    cfg = StorageConfig(
        influx=InfluxConfig(**settings),
        spool=SpoolConfig(
            path=tmp_path / "spool.sqlite", dead_letter_path=tmp_path / "dl.jsonl", fsync=False
        ),
    )
    return Storage(cfg)


LINES = [encode_line("m", {"i": str(i)}, {"x": i}, 1000 + i) for i in range(8)]


def run(st: Storage, lines: list[str], until: Callable[[], object], what: str) -> None:
    st.start()
    try:
        st.append(lines)
        wait_until(until, 15, what=what)
    finally:
        st.stop()


def test_413_splits_the_batch_until_it_fits(tmp_path, peer):
    peer.respond = lambda path, body: (
        (413, {}, b'{"error":"Request Entity Too Large"}')
        if (body.count(b"\n") >= 2)
        else (204, {}, b"")
    )
    st = storage_for(tmp_path, peer.url)
    run(st, LINES, lambda: st.spool.depth == 0, "spool drained")
    accepted = [b for _, _, b in peer.requests if b.count(b"\n") < 2]
    assert sorted(x for b in accepted for x in b.decode().split("\n")) == sorted(LINES)
    assert st.metrics.splits_total >= 3 and not st.dead_letter.read()


def test_single_line_still_too_large_is_dead_lettered(tmp_path, peer):
    peer.respond = lambda path, body: (413, {}, b"too large")
    st = storage_for(tmp_path, peer.url, batch_size=2)
    run(st, LINES[:2], lambda: st.spool.depth == 0, "spool drained")
    assert [(d["line"], d["reason"]) for d in st.dead_letter.read()] == [
        (LINES[0], "too_large"),
        (LINES[1], "too_large"),
    ]


def test_429_honours_retry_after_then_delivers_once(tmp_path, peer):
    replies = iter([(429, {"Retry-After": "1"}, b'{"error":"slow down"}')])
    peer.respond = lambda path, body: next(replies, (204, {}, b""))
    st = storage_for(tmp_path, peer.url, retry_max_ms=5000)
    run(st, LINES, lambda: st.spool.depth == 0, "spool drained")
    assert st.metrics.retries_total == 1 and st.metrics.last_backoff_s == 1.0
    assert len(peer.requests) == 2 and peer.requests[0][2] == peer.requests[1][2]
    assert st.metrics.points_written_total == len(LINES)


def test_retry_after_is_capped_by_retry_max(tmp_path, peer):
    replies = iter([(503, {"Retry-After": "3600"}, b"maintenance")])
    peer.respond = lambda path, body: next(replies, (204, {}, b""))
    st = storage_for(tmp_path, peer.url)
    run(st, LINES, lambda: st.spool.depth == 0, "spool drained")
    assert st.metrics.last_backoff_s == 0.1 and st.metrics.retries_total == 1


def test_503_backs_off_exponentially_and_keeps_everything(tmp_path, peer):
    replies = iter([(503, {}, b"unavailable")] * 4)
    peer.respond = lambda path, body: next(replies, (204, {}, b""))
    st = storage_for(tmp_path, peer.url, retry_jitter=0.0)
    run(st, LINES, lambda: st.spool.depth == 0, "spool drained")
    assert st.metrics.retries_total == 4
    assert st.metrics.last_backoff_s == pytest.approx(0.08)  # 10 ms x 2^3
    assert peer.lines()[-len(LINES) :] == LINES


def test_401_raises_an_alarm_and_never_drops(tmp_path, peer):
    peer.respond = lambda path, body: (401, {}, b'{"error":"authorization failed"}')
    st = storage_for(tmp_path, peer.url, user="loaxa", password="sai mật khẩu")
    st.start()
    try:
        st.append(LINES)
        wait_until(lambda: st.metrics.alarms_total["unauthorized"] >= 2, 10, what="alarms")
        assert st.spool.depth == len(LINES) and st.metrics.alarm_active == "unauthorized"
        peer.respond = lambda path, body: (204, {}, b"")
        wait_until(lambda: st.spool.depth == 0, 10, what="drained after fixing credentials")
        assert st.metrics.alarm_active is None
    finally:
        st.stop()
    _, headers, _ = peer.requests[-1]
    assert (
        headers["Authorization"]
        == "Basic " + base64.b64encode("loaxa:sai mật khẩu".encode()).decode()
    )


def test_v1_and_v2_send_the_same_lines(peer):
    v1 = V1Writer(InfluxConfig(url=peer.url, db="loaxa", rp="one_year"))
    v2 = V2Writer(
        InfluxConfig(api="v2", url=peer.url, bucket="loaxa", org="tinh-cao-bang", token="s3cret")
    )
    try:
        v1.write(LINES)
        v1.write(LINES[:1])  # same kept-alive connection
        v2.write(LINES)
    finally:
        v1.close()
        v2.close()
    (p1, _, b1), _, (p2, h2, b2) = peer.requests
    assert p1 == "/write?db=loaxa&precision=ms&rp=one_year"
    assert p2.startswith("/api/v2/write?")
    assert "bucket=loaxa" in p2 and "org=tinh-cao-bang" in p2 and "precision=ms" in p2
    assert h2["Authorization"] == "Token s3cret"
    assert b1 == b2 == "\n".join(LINES).encode()


def test_v2_classifies_like_v1(tmp_path, peer):
    peer.respond = lambda path, body: (
        404,
        {},
        b'{"code":"not found","message":"bucket \\"x\\" not found"}',
    )
    st = storage_for(tmp_path, peer.url, api="v2", bucket="x", org="o", token="t")
    st.start()
    try:
        st.append(LINES[:1])
        wait_until(lambda: st.metrics.alarms_total["bucket_not_found"], 10, what="alarm")
        assert st.spool.depth == 1
    finally:
        st.stop()


@pytest.mark.parametrize(
    "style",
    ["v2_line", "v3_data"],
)
def test_json_body_naming_a_line_dead_letters_exactly_that_line(tmp_path, peer, style):
    bad = LINES[2]

    def respond(path: str, body: bytes) -> Reply:
        sent = body.decode().split("\n")
        if bad not in sent:
            return 204, {}, b""
        number = sent.index(bad) + 1
        if style == "v2_line":
            doc = {"code": "invalid", "message": "no such thing", "line": number}
        else:
            doc = {
                "error": "partial write of line protocol occurred",
                "data": [
                    {
                        "original_line": bad,
                        "line_number": number,
                        "error_message": "invalid column type",
                    }
                ],
            }
        return 400, {"Content-Type": "application/json"}, json.dumps(doc).encode()

    peer.respond = respond
    st = storage_for(tmp_path, peer.url)
    run(st, LINES, lambda: st.spool.depth == 0, "spool drained")
    assert [d["line"] for d in st.dead_letter.read()] == [bad]
    assert peer.lines()[-(len(LINES) - 1) :] == [x for x in LINES if x != bad]


def test_stale_keep_alive_connection_is_replaced_without_a_retry(tmp_path, peer):
    peer.close_after_reply = True  # closes the socket without saying so, like an idle timeout
    st = storage_for(tmp_path, peer.url, batch_size=4)
    st.start()
    try:
        st.append(LINES[:4])
        wait_until(lambda: st.spool.depth == 0, 10, what="first batch")
        st.append(LINES[4:])
        wait_until(lambda: st.spool.depth == 0, 10, what="second batch on a new connection")
    finally:
        st.stop()
    assert st.metrics.retries_total == 0 and peer.lines() == LINES
