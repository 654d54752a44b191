"""Local Mosquitto and InfluxDB 1.x servers on free loopback ports, data in a folder of ours.

Used by the tests (real servers, not mocks) and by ``loaxa demo``. Both are the Debian packages
(``mosquitto``, ``influxdb``) that ``make test`` and ``make demo`` install.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.02, what: str = "condition"):
    """Poll ``predicate`` until it returns a truthy value; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def _binary(name: str, *candidates: str) -> str:
    for path in (shutil.which(name), *candidates):
        if path and os.access(path, os.X_OK):
            return path
    raise RuntimeError(f"{name} not found: run `make test` (it installs the Debian package)")


class _Process:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.proc: subprocess.Popen | None = None
        self.log = workdir / "server.log"

    def _spawn(self, argv: list[str], port: int, what: str) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_until(lambda: self.proc.poll() is not None or _port_open(port), 30, what=what)
        except TimeoutError:
            self.stop()
            raise
        if self.proc.poll() is not None:
            raise RuntimeError(f"{what} exited: {self.log.read_text(errors='replace')[-2000:]}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def kill(self) -> None:
        """kill -9, as a power cut would."""
        self.stop(signal.SIGKILL)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class Mosquitto(_Process):
    """A Mosquitto broker on 127.0.0.1:<port> with our config (queues sized deliberately)."""

    def __init__(self, workdir: Path, persistence: bool = True, extra: str = "") -> None:
        super().__init__(workdir)
        self.port = free_port()
        self.conf = workdir / "mosquitto.conf"
        lines = [
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous true",
            # The default (1000) silently drops messages to a subscriber that falls behind.
            "max_queued_messages 1000000",
            "max_inflight_messages 100",
            f"persistence {'true' if persistence else 'false'}",
            f"persistence_location {workdir}/",
            # As root, mosquitto drops to user "mosquitto", which cannot write the 0700 tmp dir:
            # persistence (sessions, retained messages across restart) would silently fail.
            "user root" if os.geteuid() == 0 else "",
            "autosave_interval 1",
            "log_type error",
            "log_type warning",
            "log_type notice",
            extra,
        ]
        self.conf.write_text("\n".join(lines) + "\n")

    def start(self) -> Mosquitto:
        self._spawn(
            [_binary("mosquitto", "/usr/sbin/mosquitto"), "-c", str(self.conf)],
            self.port,
            "mosquitto",
        )
        return self


class InfluxDB(_Process):
    """InfluxDB 1.x (Debian's influxdb) with HTTP on 127.0.0.1:<port>, v1 API."""

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self.port = free_port()
        rpc = free_port()
        self.conf = workdir / "influxdb.conf"
        self.conf.write_text(
            f'reporting-disabled = true\nbind-address = "127.0.0.1:{rpc}"\n'
            f'[meta]\n  dir = "{workdir}/meta"\n'
            f'[data]\n  dir = "{workdir}/data"\n  wal-dir = "{workdir}/wal"\n'
            '  query-log-enabled = false\n  wal-fsync-delay = "0s"\n'
            f'[http]\n  bind-address = "127.0.0.1:{self.port}"\n  log-enabled = false\n'
            "  max-body-size = 0\n"
            "[monitor]\n  store-enabled = false\n"
            "[continuous_queries]\n  enabled = false\n"
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> InfluxDB:
        self._spawn(
            [_binary("influxd", "/usr/bin/influxd"), "-config", str(self.conf)],
            self.port,
            "influxd",
        )
        wait_until(self._ping, 30, what="influxd /ping")
        return self

    def _ping(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/ping", timeout=1) as r:
                return r.status == 204
        except OSError:
            return False

    def query(self, q: str, db: str | None = None, epoch: str = "ms") -> dict:
        params = {"q": q, "epoch": epoch}
        if db:
            params["db"] = db
        data = urllib.parse.urlencode(params).encode()
        with urllib.request.urlopen(f"{self.url}/query", data=data, timeout=30) as r:
            return json.loads(r.read())

    def create_database(self, db: str) -> None:
        self.query(f'CREATE DATABASE "{db}"')

    def rows(self, q: str, db: str) -> list[dict]:
        """Run an InfluxQL query and return its first series as a list of dicts."""
        result = self.query(q, db)["results"][0]
        if "error" in result:
            raise RuntimeError(result["error"])
        out = []
        for series in result.get("series", []):
            for values in series["values"]:
                row = dict(zip(series["columns"], values, strict=True))
                row.update(series.get("tags", {}))
                out.append(row)
        return out
