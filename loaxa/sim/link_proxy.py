"""TCP proxies standing for each simulated station's 3G/4G link to the broker.

Every station's agent connects to its own loopback port; the proxy forwards bytes to the real
broker. ``cut(name)`` closes that station's connections (the broker sees the TCP connection
drop and publishes the Last Will, as after a lost mobile link) and refuses new ones until
``restore(name)``: the agent keeps storing to its offline queue and backfills once it
reconnects. All proxies share one asyncio event loop in one thread, so a fleet of thousands
costs one thread, not thousands.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger(__name__)
_CHUNK = 65536


class LinkProxies:
    def __init__(self, upstream_host: str, upstream_port: int, host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        self.host = host
        self.ports: dict[str, int] = {}
        self.counts = {"accepted": 0, "refused": 0, "upstream_failed": 0}
        self._down: set[str] = set()
        self._servers: dict[str, asyncio.AbstractServer] = {}
        self._conns: dict[str, set[asyncio.StreamWriter]] = {}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="sim-links",
                                        daemon=True)  # fmt: skip

    def start(self) -> LinkProxies:
        self._thread.start()
        return self

    def _call(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)

    def add(self, name: str) -> int:
        """Open a listening port for ``name``; returns the port its agent must connect to."""
        self._conns[name] = set()
        server = self._call(
            asyncio.start_server(lambda r, w: self._serve(name, r, w), self.host, 0)
        )
        self._servers[name] = server
        self.ports[name] = server.sockets[0].getsockname()[1]
        return self.ports[name]

    def is_up(self, name: str) -> bool:
        return name not in self._down

    def cut(self, name: str) -> None:
        """Drop the link: close open connections, refuse new ones."""
        self._down.add(name)
        self._call(self._close_all(name))

    def restore(self, name: str) -> None:
        self._down.discard(name)

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        self._call(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    # -- event loop side --------------------------------------------------------------------
    async def _close_all(self, name: str) -> None:
        for writer in list(self._conns.get(name, ())):
            writer.close()

    async def _shutdown(self) -> None:
        for server in self._servers.values():
            server.close()
        for name in self._conns:
            await self._close_all(name)
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _serve(self, name: str, reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter) -> None:  # fmt: skip
        if name in self._down:
            self.counts["refused"] += 1
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError as err:
            self.counts["upstream_failed"] += 1
            log.warning("link %s: broker %s:%d unreachable: %s", name, *self.upstream, err)
            writer.close()
            return
        self.counts["accepted"] += 1
        conns = self._conns[name]
        conns.update((writer, up_writer))
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            for w in (writer, up_writer):
                conns.discard(w)
                w.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until EOF or error, then close the other side so both directions end together."""
    with contextlib.suppress(OSError, asyncio.IncompleteReadError):
        while data := await reader.read(_CHUNK):
            writer.write(data)
            await writer.drain()
    writer.close()
