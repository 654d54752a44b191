"""A TCP proxy for fault injection: sits between clients (agents) and a server (the broker).

Modes, switchable at any moment from the test thread::

    PASS   bytes flow both ways                     (normal link)
    STALL  connections stay open, nothing flows     (half-open TCP: a silent power cut or a
           (bytes are held, not dropped)             3G link that stops answering; black hole)
    SLOW   each chunk waits ``delay_s`` first       (a congested mobile link)
    CUT    new connections are reset at once        (server or route unreachable)

and one action: ``reset()`` aborts every open connection with a TCP RST (SO_LINGER 0), as a
NAT timeout or a modem re-attach does. One thread accepts; each connection has two pump threads.
Everything stops on ``stop()`` (threads joined, sockets closed).
"""

from __future__ import annotations

import enum
import select
import socket
import struct
import threading
import time
from contextlib import suppress

_CHUNK = 65536


class Mode(enum.Enum):
    PASS = "pass"
    STALL = "stall"
    SLOW = "slow"
    CUT = "cut"


def _abort(sock: socket.socket) -> None:
    """Close with RST instead of FIN (SO_LINGER on, timeout 0)."""
    with suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with suppress(OSError):
        sock.close()


class TcpProxy:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1", port: int = 0) -> None:
        self.target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", port))
        self._listener.settimeout(0.1)
        self.port: int = self._listener.getsockname()[1]
        self.mode = Mode.PASS
        self.delay_s = 0.0
        self.accepted = 0
        self.resets = 0
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._acceptor = threading.Thread(target=self._accept_loop, name="tcp-proxy", daemon=True)

    def start(self) -> TcpProxy:
        self._acceptor.start()
        return self

    # -- fault controls ---------------------------------------------------------------------
    def set_mode(self, mode: Mode, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.mode = mode

    def reset(self) -> int:
        """Abort every open connection with RST; returns how many were cut."""
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for client, server in pairs:
            _abort(client)
            _abort(server)
        self.resets += len(pairs)
        return len(pairs)

    @property
    def open_connections(self) -> int:
        with self._lock:
            return len(self._pairs)

    def stop(self) -> None:
        self._stop.set()
        self.reset()
        self._acceptor.join(5)
        for thread in self._threads:
            thread.join(5)
        self._listener.close()

    # -- plumbing ---------------------------------------------------------------------------
    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self.mode is Mode.CUT:
                _abort(client)
                continue
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                _abort(client)  # the server is down: the client sees a refused/reset link
                continue
            self.accepted += 1
            with self._lock:
                self._pairs.append((client, server))
            self._threads = [t for t in self._threads if t.is_alive()]
            for src, dst in ((client, server), (server, client)):
                t = threading.Thread(target=self._pump, args=(src, dst), daemon=True)
                self._threads.append(t)
                t.start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while not self._stop.is_set():
                if self.mode is Mode.STALL:  # hold the bytes in the kernel buffers
                    time.sleep(0.02)
                    continue
                ready, _, _ = select.select([src], [], [], 0.1)
                if not ready:
                    continue
                data = src.recv(_CHUNK)
                if not data:
                    break
                while self.mode is Mode.STALL and not self._stop.is_set():
                    time.sleep(0.02)
                if self.mode is Mode.SLOW and self.delay_s > 0:
                    time.sleep(self.delay_s)
                dst.sendall(data)
        except (OSError, ValueError):
            pass  # reset by us or by the peer
        with self._lock:
            pair = next((p for p in self._pairs if src in p), None)
            if pair is not None:
                self._pairs.remove(pair)
        if pair is not None:
            for sock in pair:  # one side closed: close the other so the peer notices
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                with suppress(OSError):
                    sock.close()
