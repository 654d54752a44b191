"""The daemon with a serial gateway: RS-485 controllers on a real pty (multi-drop peer), their
telemetry stored in real InfluxDB, and a dead line reported as upstream_down."""

from __future__ import annotations

import os
import signal
import tty

import pytest

from tests.servers import free_port, wait_until
from tests.test_collector_daemon import DB, INVENTORY, Daemon, healthz, stored_seqs
from tests.test_ingest_serial import MultiDropPeer


@pytest.fixture
def line():
    master, slave = os.openpty()
    tty.setraw(slave)
    peer = MultiDropPeer(master, [3])  # cb-01282, address 3 on gw-thuc-phan in the inventory
    peer.thread.start()
    yield peer, os.ttyname(slave)
    peer.stop.set()
    os.close(slave)
    os.close(master)
    peer.thread.join(5)


@pytest.fixture
def collector(tmp_path, mosquitto, influxdb, line):
    _, url = line
    http_port = free_port()
    path = tmp_path / "collector.toml"
    path.write_text(
        f'inventory = "{INVENTORY}"\n'
        '[daemon]\nstate_db = "state.sqlite"\nhealth_tick_s = 1\n'
        f'[mqtt]\nport = {mosquitto.port}\nclient_id = "collector-gw"\n'
        f'[influx]\nurl = "{influxdb.url}"\ndb = "{DB}"\ncreate_database = true\n'
        "flush_interval_ms = 100\n"
        '[spool]\npath = "spool.sqlite"\ndead_letter_path = "dead.jsonl"\n'
        f"[http]\nport = {http_port}\n"
        f'[[serial_gateways]]\nid = "gw-thuc-phan"\nurl = "{url}"\npoll_interval_s = 0.5\n'
        "response_timeout_s = 0.2\nretries = 1\ndead_after_s = 2\n"
    )
    daemon = Daemon(path, tmp_path / "collector.log")
    daemon.http_port = http_port
    daemon.start()
    yield daemon
    if daemon.running:
        daemon.signal(signal.SIGKILL)


def test_gateway_station_stored_and_dead_line_reported(line, collector, influxdb):
    peer, _ = line
    wait_until(lambda: len(stored_seqs(influxdb, "cb-01282")) >= 3, 30, what="gateway telemetry")
    status = influxdb.rows("SELECT * FROM status WHERE station = 'cb-01282'", DB)
    assert status and status[0]["commune"] == "01273"
    wait_until(lambda: (healthz(collector.http_port) or {}).get("ok"), 10, what="healthy")

    peer.muted.set()  # the line goes dead
    wait_until(
        lambda: "health: upstream_down gw-thuc-phan" in collector.log.read_text(),
        30,
        what="upstream_down from the health engine",
    )

    # /healthz answers within 2 s or not at all (None): poll it rather than read it once.
    def gateway_check() -> bool | None:
        return (healthz(collector.http_port) or {}).get("checks", {}).get("gateway_gw-thuc-phan_up")

    wait_until(lambda: gateway_check() is False, 10, what="/healthz: gateway down")

    peer.muted.clear()
    wait_until(
        lambda: "health: upstream_restored gw-thuc-phan" in collector.log.read_text(),
        30,
        what="upstream restored",
    )
    assert collector.signal(signal.SIGTERM) == 0
