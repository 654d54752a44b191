"""The daemon keeps the dashboards' derived measurements current: station_info for every
inventory station and month-to-date availability, read back from what it stored."""

from __future__ import annotations

import signal

from collector.inventory import load_inventory
from collector.storage import names as n
from tests.live_inventory import live_inventory
from tests.servers import free_port, wait_until
from tests.test_collector_daemon import (
    DB,
    TOPIC,
    Daemon,
    Publisher,
    healthz,
    telemetry,
)


def test_daemon_feeds_station_info_and_availability(tmp_path, mosquitto, influxdb):
    http_port = free_port()
    inventory = live_inventory(tmp_path)  # cb-01267 must not be in its dated maintenance
    config = tmp_path / "collector.toml"
    config.write_text(
        f'inventory = "{inventory}"\n'
        '[daemon]\nstate_db = "state.sqlite"\nhealth_tick_s = 0.5\ndashboard_feed_s = 1\n'
        f'[mqtt]\nport = {mosquitto.port}\nclient_id = "collector-feed"\n'
        f'[influx]\nurl = "{influxdb.url}"\ndb = "{DB}"\ncreate_database = true\n'
        '[spool]\npath = "spool.sqlite"\ndead_letter_path = "dead.jsonl"\n'
        f"[http]\nport = {http_port}\n[alerts]\nenabled = false\n"
    )
    daemon = Daemon(config, tmp_path / "collector.log")
    daemon.start()
    try:
        wait_until(lambda: (healthz(http_port) or {}).get("ok"), 30, what="collector up")
        pub = Publisher(mosquitto.port)
        pub.send(TOPIC, telemetry(1)).wait_for_publish(10)
        pub.close()
        stations = set(load_inventory(inventory).stations)

        def info() -> set[str]:
            rows = _rows(influxdb, f'SELECT * FROM "{n.STATION_INFO}"')
            return {r[n.T_STATION] for r in rows}

        wait_until(lambda: info() == stations, 60, what="station_info for every station")
        wait_until(
            lambda: any(
                r.get(n.T_STATION) == "cb-01267" and r.get(n.F_PERCENT) == 100.0
                for r in _rows(influxdb, f'SELECT * FROM "{n.AVAILABILITY}"')
            ),
            60,
            what="month-to-date availability of the reporting station",
        )
    finally:
        assert daemon.signal(signal.SIGTERM) == 0


def _rows(influxdb, q: str) -> list[dict]:
    try:
        return influxdb.rows(q, DB)
    except RuntimeError:  # database not created yet
        return []
