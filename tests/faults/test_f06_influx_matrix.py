"""Fault case 6: InfluxDB answers badly (through tests/faults/influx_proxy.py, in front of the
real InfluxDB 1.6): 429 + Retry-After, 500/502/503, 413, 422 and 400 partial writes, 401, 404,
connection refused, black hole. Each fault checks its classification (retry, split, dead-letter,
alarm), that nothing is lost, and records the drain time after the fault is lifted."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from collector.storage import Storage, StorageConfig
from collector.storage.config import InfluxConfig, SpoolConfig
from collector.storage.line_protocol import encode_line
from tests.faults import report
from tests.faults.influx_proxy import BlackHole, InfluxProxy, RejectLine, Status, TooLarge
from tests.servers import wait_until

DB = "loaxa_f06"
T0 = 1_790_000_000_000


def lines(tag: str, count: int) -> list[str]:
    return [encode_line("telemetry", {"station": tag}, {"seq": i}, T0 + i) for i in range(count)]


def stored(influxdb, tag: str) -> int:
    try:
        rows = influxdb.rows(f"SELECT count(seq) FROM telemetry WHERE station = '{tag}'", DB)
    except (RuntimeError, KeyError):
        return 0
    return rows[0]["count"] if rows else 0


@pytest.fixture
def rig(tmp_path, influxdb):
    proxy = InfluxProxy(influxdb.url)
    influx = InfluxConfig(
        url=proxy.url, db=DB, create_database=True, batch_size=40, flush_interval_ms=20,
        retry_initial_ms=50, retry_max_ms=1500, timeout_s=1.0,
    )  # fmt: skip
    spool = SpoolConfig(path=tmp_path / "spool.sqlite", dead_letter_path=tmp_path / "dl.jsonl")
    storage = Storage(StorageConfig(influx=influx, spool=spool))
    storage.start()
    yield proxy, storage
    storage.stop()
    proxy.stop()


def run_fault(
    name: str, rig, influxdb, fault, count: int, *, during: Callable[[], None] | None = None,
    expect_stored: int | None = None,
) -> dict:  # fmt: skip
    """Inject ``fault``, spool ``count`` points, wait until the fault was hit (``during``), lift
    it, and measure the drain: everything (minus dead letters) stored, spool empty."""
    proxy, storage = rig
    before = storage.metrics.snapshot()
    proxy.set(fault) if not callable(fault) else fault()
    storage.append(lines(name, count))
    if during is not None:
        during()
    lifted = time.monotonic()
    proxy.set(None)
    if callable(fault):
        proxy.accept()
    want = count if expect_stored is None else expect_stored
    wait_until(lambda: stored(influxdb, name) == want and storage.spool.depth == 0, 60, what=name)
    after = storage.metrics.snapshot()
    row = {
        "sent": count, "stored": want, "lost": 0,
        "dead_lettered": _rejects(after) - _rejects(before),
        "retries": after["retries_total"] - before["retries_total"],
        "splits": after["splits_total"] - before["splits_total"],
        "recover_s": time.monotonic() - lifted,
    }  # fmt: skip
    report.record(f"f06 influx {name}", **row)
    return row


def _rejects(snapshot: dict) -> int:
    return sum(snapshot["rejects_total"].values())


def hit(proxy: InfluxProxy, status: int | str, times: int = 1) -> Callable[[], None]:
    return lambda: wait_until(
        lambda: proxy.statuses().count(status) >= times, 30, what=f"{status} answered"
    )


@pytest.mark.parametrize(
    "count", [pytest.param(40, id="fast"), pytest.param(2000, id="slow", marks=pytest.mark.slow)]
)
def test_influx_fault_matrix(no_leaked_threads, count, rig, influxdb):
    proxy, storage = rig

    # 429 with Retry-After: the drainer waits what the server asked (capped), not its own backoff
    row = run_fault("429", rig, influxdb, Status(429, headers={"Retry-After": "1"}, times=2),
                    count, during=hit(proxy, 429, 2))  # fmt: skip
    assert row["retries"] >= 2 and row["dead_lettered"] == 0
    assert storage.metrics.last_backoff_s == 1.0  # Retry-After honoured, no jitter added

    for code in (500, 502, 503):  # retried with backoff, nothing dead-lettered
        row = run_fault(str(code), rig, influxdb, Status(code, times=3), count,
                        during=hit(proxy, code, 3))  # fmt: skip
        assert row["retries"] >= 3 and row["dead_lettered"] == 0

    # 413: the batch is split until the halves fit, nothing refused
    row = run_fault("413", rig, influxdb, TooLarge(max_lines=7), count, during=hit(proxy, 413))
    assert row["splits"] >= 1 and row["dead_lettered"] == 0

    # 422 partial: the named line goes to the dead-letter file with its reason, the rest is stored
    row = run_fault("422", rig, influxdb, RejectLine(2), count, during=hit(proxy, 422),
                    expect_stored=count - 1)  # fmt: skip
    assert row["dead_lettered"] == 1
    dead = storage.dead_letter.read()
    assert dead[-1]["line"] == lines("422", count)[2] and dead[-1]["reason"] == "parse_error"

    # 400 partial from the real server: a field type conflict (seq as a string)
    bad = encode_line("telemetry", {"station": "400"}, {"seq": "not-a-number"}, T0 + 10**6)
    storage.append([bad])
    wait_until(lambda: storage.dead_letter.read()[-1]["line"] == bad, 30, what="400 dead letter")
    assert storage.dead_letter.read()[-1]["reason"] == "field_type_conflict"
    row = run_fault("400", rig, influxdb, None, count)
    report.record("f06 influx 400 conflict", sent=1, stored=0, dead_lettered=1, lost=0)

    # 401 / 404: operator alarm, points keep buffering in the spool, drained when fixed
    for code, alarm, body in (
        (401, "unauthorized", '{"error":"authorization failed"}'),
        (404, "database_not_found", '{"error":"database not found: \\"loaxa_f06\\""}'),
    ):

        def alarmed(alarm=alarm) -> None:
            wait_until(lambda: storage.metrics.alarm_active == alarm, 30, what=alarm)
            assert storage.spool.depth >= count  # kept, not dropped

        row = run_fault(str(code), rig, influxdb, Status(code, body), count, during=alarmed)
        assert row["dead_lettered"] == 0 and storage.metrics.alarm_active is None

    # connection refused (the port closed) and a black hole (accepts, never answers)
    retries = storage.metrics.retries_total
    row = run_fault("refused", rig, influxdb, proxy.refuse, count,
                    during=lambda: wait_until(lambda: storage.metrics.retries_total > retries + 1,
                                              30, what="refused retried"))  # fmt: skip
    assert row["dead_lettered"] == 0
    row = run_fault("blackhole", rig, influxdb, BlackHole(), count,
                    during=hit(proxy, "blackhole", 2))  # fmt: skip
    assert row["retries"] >= 2 and row["dead_lettered"] == 0
