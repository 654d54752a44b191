"""The fault proxy itself (loaxa/sim/tcp_proxy.py) against a local echo server."""

from __future__ import annotations

import socket
import threading

import pytest

from loaxa.sim.tcp_proxy import Mode, TcpProxy
from tests.servers import wait_until


@pytest.fixture
def echo():
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        conns = []
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                for c in conns:
                    try:
                        c.setblocking(False)
                        data = c.recv(4096)
                        if data:
                            c.sendall(data)
                    except (BlockingIOError, OSError):
                        pass
                continue
            conns.append(conn)
        for c in conns:
            c.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join(5)
    server.close()


@pytest.fixture
def proxy(echo):
    p = TcpProxy(echo).start()
    yield p
    p.stop()


def roundtrip(sock: socket.socket, data: bytes, timeout: float = 5.0) -> bytes:
    sock.settimeout(timeout)
    sock.sendall(data)
    return sock.recv(4096)


def test_pass_stall_and_reset(proxy):
    with socket.create_connection(("127.0.0.1", proxy.port)) as s:
        assert roundtrip(s, b"one") == b"one"
        proxy.set_mode(Mode.STALL)
        s.sendall(b"two")
        s.settimeout(0.5)
        with pytest.raises(TimeoutError):  # held, not lost: a half-open link
            s.recv(4096)
        proxy.set_mode(Mode.PASS)
        s.settimeout(5)
        assert s.recv(4096) == b"two"
        assert proxy.reset() == 1
        s.settimeout(5)
        with pytest.raises(ConnectionResetError):
            s.recv(4096) or s.sendall(b"x") or s.recv(4096)


def test_cut_refuses_new_connections(proxy):
    proxy.set_mode(Mode.CUT)
    with socket.create_connection(("127.0.0.1", proxy.port)) as s:
        s.settimeout(5)
        with pytest.raises(ConnectionResetError):
            s.recv(4096) or s.sendall(b"x") or s.recv(4096)
    proxy.set_mode(Mode.PASS)
    with socket.create_connection(("127.0.0.1", proxy.port)) as s:
        assert roundtrip(s, b"back") == b"back"
    wait_until(lambda: proxy.accepted == 1, 10, what="one proxied connection")
