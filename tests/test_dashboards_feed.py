"""The dashboard feed: timelines read back from a real InfluxDB, availability / compliance /
station_info written, and the overview panels reading them show the expected numbers."""

from __future__ import annotations

import threading
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from collector.export.errors import SourceError
from collector.export.influx_query import InfluxReader
from collector.health.availability import Transition
from collector.health.events import Cause, State
from collector.storage.config import InfluxConfig
from collector.storage.points import state_point
from collector.storage.writers import V1Writer
from dashboards import overview
from dashboards.feed_job import FeedResult, run_every, run_once
from dashboards.feeds import availability_points, commune_timeline, month_start_ms
from dashboards.generate import EXAMPLE_INVENTORY, example_inventory
from dashboards.macros import interpolate
from loaxa.cli import main

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
MIN = 60_000


def local_ms(*args: int) -> int:
    return int(datetime(*args, tzinfo=TZ).timestamp() * 1000)


def test_month_start_is_local_midnight_on_the_first():
    inv = example_inventory()
    # 1 Nov 2026 05:00 local is still 31 Oct 22:00 UTC: the local month has begun.
    assert month_start_ms(inv, local_ms(2026, 11, 1, 5)) == local_ms(2026, 11, 1)
    assert month_start_ms(inv, local_ms(2026, 10, 31, 23, 59)) == local_ms(2026, 10, 1)


def test_commune_down_while_any_required_station_is_down():
    a = [
        Transition("a", 0, State.OPERATING),
        Transition("a", 100, State.DOWN),
        Transition("a", 200, State.OPERATING),
    ]
    b = [
        Transition("b", 0, State.OPERATING),
        Transition("b", 150, State.SILENT),
        Transition("b", 300, State.OPERATING),
    ]
    merged = [(t.ts_ms, t.state) for t in commune_timeline("c", [a, b], 400)]
    # Down from the first failure to the last recovery (the export's commune timeline).
    assert merged == [
        (0, State.OPERATING),
        (100, State.DOWN),
        (200, State.SILENT),
        (300, State.OPERATING),
    ]


def test_station_without_data_is_unknown_not_up_or_down():
    inv = example_inventory()
    now = local_ms(2026, 10, 10)
    lines = availability_points(inv, {}, now)
    station = next(x for x in lines if "station=cb-01267" in x)
    assert (
        "percent=" not in station and f"unknown_s={(now - local_ms(2026, 10, 1)) / 1000}" in station
    )


def write(server, lines):
    writer = V1Writer(InfluxConfig(url=server.url, db="loaxa"))
    try:
        writer.write(lines)
    finally:
        writer.close()


def test_feed_run_writes_what_the_overview_reads(influxdb):
    inv = example_inventory()
    influxdb.create_database("loaxa")
    now = local_ms(2026, 10, 20, 12)
    outage = (local_ms(2026, 10, 3, 8), local_ms(2026, 10, 3, 9, 30))
    lines = [
        state_point(local_ms(2026, 9, 20), "cao-bang", s.commune, s.id, State.OPERATING)
        for s in inv.stations.values()
    ]
    lines += [
        state_point(outage[0], "cao-bang", "01273", "cb-01267", State.DOWN, Cause.POWER),
        state_point(outage[1], "cao-bang", "01273", "cb-01267", State.OPERATING),
        state_point(now - 60 * MIN, "cao-bang", "01290", "cb-01290", State.DOWN, Cause.UPSTREAM),
    ]
    write(influxdb, lines)
    reader = InfluxReader(influxdb.url, "loaxa")
    writer = V1Writer(InfluxConfig(url=influxdb.url, db="loaxa"))
    try:
        result = run_once(inv, reader, writer.write, now)
    finally:
        writer.close()
    assert result.stations_with_data == 4

    dash = overview.build(inv)
    variables = {
        "province": "cao-bang",
        "commune": ["01273", "01290"],
        "station": list(inv.stations),
    }

    def rows(title: str, ref: int = 0) -> list[dict]:
        panel = next(p for p in dash["panels"] if p["title"] == title)
        q = interpolate(panel["targets"][ref]["query"], local_ms(2026, 10, 1), now, "1m", variables)
        return influxdb.rows(q, "loaxa")

    elapsed_min = (now - local_ms(2026, 10, 1)) // MIN
    avail = {
        r["commune"]: r["percent"]
        for r in rows("Tỷ lệ hoạt động theo xã, từ đầu tháng (thấp nhất trước)")
    }
    assert avail == {
        "01273": pytest.approx(100 * (elapsed_min - 90) / elapsed_min),
        "01290": pytest.approx(100 * (elapsed_min - 60) / elapsed_min),
    }
    assert rows("Xã có hệ thống truyền thanh đang hoạt động")[0]["share"] == 50.0
    assert rows("Xã không hoạt động")[0]["n"] == 1
    geo = {r["station"]: r for r in rows("Bản đồ trạm theo trạng thái")}
    assert geo["cb-01290"]["lat"] == 22.8556 and geo["cb-01290"]["technician"] == "Bế Thị Hoa"


def test_feed_cli_once(influxdb, capsys):
    influxdb.create_database("loaxa")
    argv = [
        "dashboards",
        "feed",
        "--inventory",
        str(EXAMPLE_INVENTORY),
        "--influx-url",
        influxdb.url,
    ]
    assert main(argv) == 0
    assert "wrote" in capsys.readouterr().out
    assert (
        len(influxdb.rows('SELECT last("lat") FROM "station_info" GROUP BY "station"', "loaxa"))
        == 4
    )


def test_run_every_counts_failures_and_keeps_going():
    stop = threading.Event()
    calls: list[int] = []

    def job() -> FeedResult:
        calls.append(1)
        if len(calls) == 3:
            stop.set()
        if len(calls) == 1:
            raise SourceError("influxdb down")
        return FeedResult(0, 1)

    assert run_every(0, job, stop) == 1
    assert len(calls) == 3
