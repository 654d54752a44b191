"""Fixtures and helpers of fault cases 1-8 (the fixtures are registered in conftest.py)."""

from __future__ import annotations

import threading
import time

import pytest

from loaxa.sim.tcp_proxy import TcpProxy
from tests.faults.stack import CollectorProcess, Key, stored_keys, write_collector_config
from tests.servers import free_port, wait_until


@pytest.fixture
def no_leaked_threads():
    before = set(threading.enumerate())
    yield
    wait_until(
        lambda: not [t for t in threading.enumerate() if t not in before], 15, what="threads to end"
    )


@pytest.fixture
def broker_proxy(mosquitto):
    proxy = TcpProxy(mosquitto.port).start()
    yield proxy
    proxy.stop()


@pytest.fixture
def collector(tmp_path, mosquitto, influxdb):
    http_port = free_port()
    config = write_collector_config(tmp_path, mosquitto.port, influxdb.url, http_port)
    proc = CollectorProcess(config, http_port)
    yield proc
    proc.cleanup()


def start_collector(proc: CollectorProcess) -> None:
    proc.start()
    wait_until(proc.broker_connected, 90, interval=0.1, what="collector connected to the broker")


class ArrivalWatch:
    """Polls InfluxDB and stamps when each key first appears (resolution: ``every_s``)."""

    def __init__(self, influxdb, every_s: float = 0.2) -> None:
        self.influxdb, self.every_s = influxdb, every_s
        self.first_seen: dict[Key, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="arrival-watch", daemon=True)

    def start(self) -> ArrivalWatch:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            now = time.time()
            for key in stored_keys(self.influxdb):
                self.first_seen.setdefault(key, now)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def delays_s(self) -> list[float]:
        return [seen - key[2] / 1000 for key, seen in self.first_seen.items()]
