"""The durable spool: order, persistence, byte accounting, the full policies, the drainer loop."""

from __future__ import annotations

import threading

import pytest

from collector.storage.config import InfluxConfig, SpoolFullPolicy
from collector.storage.dead_letter import DeadLetter
from collector.storage.drain import SpoolDrainer
from collector.storage.errors import PartialWriteError, RetryableWriteError, SpoolFullError
from collector.storage.spool import Spool
from tests.servers import wait_until


def test_rows_come_back_in_order_and_survive_reopening(tmp_path):
    spool = Spool(tmp_path / "s.sqlite")
    spool.append(["a 1", "b 2"])
    spool.append(["Hòa An 3"])
    spool.close()
    again = Spool(tmp_path / "s.sqlite")
    try:
        rows = again.peek(10)
        assert [line for _, line in rows] == ["a 1", "b 2", "Hòa An 3"]
        assert again.depth == 3 and again.bytes == len("a 1b 2Hòa An 3".encode())
        assert again.delete_range(rows[0][0], rows[1][0]) == 2
        assert [line for _, line in again.peek(10)] == ["Hòa An 3"]
        assert again.bytes == len("Hòa An 3".encode())
    finally:
        again.close()


def test_reject_policy_refuses_and_alarms_when_full(tmp_path):
    spool = Spool(tmp_path / "s.sqlite", max_bytes=1024, full_policy=SpoolFullPolicy.REJECT)
    try:
        spool.append(["x" * 1000])
        with pytest.raises(SpoolFullError, match="spool full"):
            spool.append(["y" * 100])
        assert spool.alarm_full and spool.full_refusals == 1 and spool.depth == 1
        rows = spool.peek(1)
        spool.delete_range(rows[0][0], rows[0][0])
        assert not spool.alarm_full  # cleared once drained below 90 %
        spool.append(["y" * 100])
    finally:
        spool.close()


def test_drop_oldest_policy_keeps_the_newest(tmp_path):
    spool = Spool(tmp_path / "s.sqlite", max_bytes=1024, full_policy="drop_oldest")
    try:
        for i in range(20):
            spool.append([f"{i:03d}" + "z" * 97])  # 100 bytes each
        kept = [line[:3] for _, line in spool.peek(100)]
        assert kept == [f"{i:03d}" for i in range(10, 20)]
        assert spool.dropped == 10 and spool.bytes == 1000 and spool.alarm_full
    finally:
        spool.close()


class FlakyWriter:
    """In-memory server: fails with a partial write naming one line, otherwise stores."""

    def __init__(self, bad: str) -> None:
        self.bad, self.stored, self.calls = bad, [], 0

    def write(self, lines) -> None:
        self.calls += 1
        if self.bad in lines:
            raise PartialWriteError("HTTP 400", 400, f"unable to parse '{self.bad}': bad")
        self.stored.extend(lines)

    def close(self) -> None:
        pass


def test_drainer_batches_by_size_and_time(tmp_path):
    spool = Spool(tmp_path / "s.sqlite", fsync=False)
    writer = FlakyWriter(bad="never")
    cfg = InfluxConfig(batch_size=10, flush_interval_ms=30)
    drainer = SpoolDrainer(spool, writer, DeadLetter(tmp_path / "dl.jsonl"), cfg)
    drainer.start()
    try:
        spool.append([f"m x={i}i {i}" for i in range(25)])
        wait_until(lambda: len(writer.stored) == 25, 20, what="25 lines written")
        assert drainer.metrics.batches_written_total == 3  # 10 + 10 + 5 after the interval
        spool.append(["m x=99i 99"])  # less than a batch: written after flush_interval_ms
        wait_until(lambda: len(writer.stored) == 26, 20, what="partial batch flushed")
    finally:
        drainer.stop()
        spool.close()
    assert not any(t.name == "storage-drainer" for t in threading.enumerate())


def test_drainer_dead_letters_only_the_named_line(tmp_path):
    spool = Spool(tmp_path / "s.sqlite", fsync=False)
    lines = [f"m x={i}i {i}" for i in range(6)]
    writer = FlakyWriter(bad=lines[2])
    dl = DeadLetter(tmp_path / "dl.jsonl")
    drainer = SpoolDrainer(spool, writer, dl, InfluxConfig(batch_size=100))
    try:
        spool.append(lines)
        assert drainer.drain_once() == 6
        assert writer.stored == lines[:2] + lines[3:]
        assert [(d["line"], d["reason"]) for d in dl.read()] == [(lines[2], "parse_error")]
        assert spool.depth == 0 and drainer.metrics.rejects_total["parse_error"] == 1
    finally:
        spool.close()


class DownWriter:
    def write(self, lines) -> None:
        raise RetryableWriteError("connection refused")

    def close(self) -> None:
        pass


def test_backoff_stays_capped_through_a_very_long_outage(tmp_path):
    spool = Spool(tmp_path / "s.sqlite", fsync=False)
    cfg = InfluxConfig(retry_initial_ms=500, retry_max_ms=60_000, retry_jitter=0.0)
    drainer = SpoolDrainer(spool, DownWriter(), DeadLetter(tmp_path / "dl.jsonl"), cfg)
    drainer._stop.set()  # make each backoff return at once: we check the delays, not the clock
    try:
        for _ in range(5000):  # about 3.5 days of 60 s retries
            drainer._backoff(None)
        assert drainer.metrics.last_backoff_s == 60.0
    finally:
        spool.close()
