"""Nothing is lost: InfluxDB stopped under load, the writer process killed -9 mid-stream."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from collector.storage import SpoolFullError, Storage, StorageConfig
from collector.storage.config import InfluxConfig, SpoolConfig
from collector.storage.line_protocol import encode_line
from collector.storage.spool import Spool
from tests.servers import wait_until

DB = "loaxa"
T0 = 1_790_000_000_000
ROOT = Path(__file__).resolve().parent.parent


def config(tmp_path: Path, url: str, batch_size: int) -> StorageConfig:
    return StorageConfig(
        influx=InfluxConfig(
            url=url,
            db=DB,
            create_database=True,
            batch_size=batch_size,
            flush_interval_ms=20,
            retry_initial_ms=20,
            retry_max_ms=300,
        ),
        spool=SpoolConfig(
            path=tmp_path / "spool.sqlite", dead_letter_path=tmp_path / "dl.jsonl", fsync=False
        ),  # WAL + synchronous=NORMAL survives a process kill
    )


def lines(start: int, count: int) -> list[str]:
    return [
        encode_line("telemetry", {"station": f"s{i % 50}"}, {"seq": i}, T0 + i)
        for i in range(start, start + count)
    ]


def stored(influxdb) -> int:
    rows = influxdb.rows("SELECT count(seq) FROM telemetry", DB)
    return rows[0]["count"] if rows else 0


def test_influxdb_stopped_under_load_then_restarted(tmp_path, influxdb):
    total, chunk = 20_000, 100
    st = Storage(config(tmp_path, influxdb.url, batch_size=500))
    st.start()
    half = threading.Event()
    resume = threading.Event()

    def feed() -> None:
        for k in range(0, total, chunk):
            if k == total // 2:
                half.set()
                resume.wait(30)
            st.append(lines(k, chunk))

    feeder = threading.Thread(target=feed)
    feeder.start()
    try:
        assert half.wait(30)
        wait_until(lambda: st.metrics.points_written_total > 0, 10, what="first writes")
        influxdb.stop()
        resume.set()  # the second half arrives while InfluxDB is down
        wait_until(lambda: st.metrics.retries_total >= 3, 20, what="retries while down")
        assert st.spool.depth > 0
        influxdb.start()  # same port and data directory
        feeder.join(30)
        wait_until(lambda: st.spool.depth == 0, 30, what="spool drained after restart")
    finally:
        resume.set()
        feeder.join(30)
        st.stop()
    assert stored(influxdb) == total
    assert st.metrics.points_written_total >= total and not st.dead_letter.read()


def _child(spool_dir: str, url: str) -> None:
    """The writer process: drain the spool until SIGTERM (or a kill -9)."""
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    st = Storage(config(Path(spool_dir), url, batch_size=100))
    st.start()
    done.wait()
    st.stop()


def _spawn(tmp_path: Path, url: str) -> subprocess.Popen:
    code = f"from tests.test_storage_faults import _child; _child({str(tmp_path)!r}, {url!r})"
    return subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}
    )


def test_writer_killed_mid_stream_rewrites_without_duplicates(tmp_path, influxdb):
    total = 60_000
    spool = Spool(tmp_path / "spool.sqlite", fsync=False)
    for k in range(0, total, 5000):
        spool.append(lines(k, 5000))
    spool.close()
    influxdb.create_database(DB)
    child = _spawn(tmp_path, influxdb.url)
    try:
        wait_until(lambda: stored(influxdb) >= 2000, 30, what="first batches stored")
        child.kill()  # kill -9: no cleanup, a batch may be half sent
        child.wait(10)
        left = Spool(tmp_path / "spool.sqlite", fsync=False)
        unwritten = left.depth
        left.close()
        assert 0 < unwritten < total, "the kill must land mid-stream"
        child = _spawn(tmp_path, influxdb.url)
        wait_until(lambda: stored(influxdb) == total, 60, what="all points stored")
        child.send_signal(signal.SIGTERM)
        assert child.wait(20) == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
    left = Spool(tmp_path / "spool.sqlite", fsync=False)
    try:
        assert left.depth == 0
    finally:
        left.close()
    # points are unique by (series, time): a rewritten batch overwrote, it did not add
    assert stored(influxdb) == total


def test_full_spool_refuses_while_influxdb_is_down_then_recovers(tmp_path, influxdb):
    cfg = config(tmp_path, influxdb.url, batch_size=500)
    cfg.spool.max_bytes = 20_000  # a few hundred lines: "an hour of outage" in miniature
    st = Storage(cfg)
    st.start()  # creates the database
    try:
        influxdb.stop()
        accepted = 0
        with pytest.raises(SpoolFullError, match="spool full"):
            while accepted < 100_000:
                st.append(lines(accepted, 10))
                accepted += 10
        snap = st.snapshot()
        assert snap["spool_full"] and snap["spool_full_refusals_total"] == 1
        assert snap["spool_depth"] == accepted  # everything accepted is still held
        influxdb.start()
        wait_until(lambda: st.spool.depth == 0, 30, what="spool drained after restart")
        assert not st.snapshot()["spool_full"]
        st.append(lines(accepted, 10))  # accepted again once drained
        wait_until(lambda: st.spool.depth == 0, 30, what="spool drained")
    finally:
        st.stop()
    assert stored(influxdb) == accepted + 10


def test_influxdb_killed_repeatedly_under_load_loses_nothing(tmp_path, influxdb):
    """200 000 points while InfluxDB is kill -9'd three times (acknowledged = fsynced there)."""
    total, chunk = 200_000, 1000
    st = Storage(config(tmp_path, influxdb.url, batch_size=5000))
    st.start()
    try:
        for k in range(0, total, chunk):
            down = k and k % 50_000 == 0
            if down:
                written = st.metrics.points_written_total
                wait_until(  # the writer is busy (or idle with nothing left) when we kill
                    lambda w=written: st.metrics.points_written_total > w or not st.spool.depth,
                    30,
                    what="progress before the kill",
                )
                influxdb.kill()
                retries = st.metrics.retries_total
            st.append(lines(k, chunk))
            if down:  # the chunk above is pending: the drainer must hit the dead server
                wait_until(lambda r=retries: st.metrics.retries_total > r, 30, what="retry")
                influxdb.start()
        wait_until(lambda: st.spool.depth == 0, 120, what="spool drained")
    finally:
        st.stop()
    assert stored(influxdb) == total and not st.dead_letter.read()
