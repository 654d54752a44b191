"""OfflineQueue: ordering, bound and eviction count, seq atomicity, reopen after kill -9."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import textwrap

import pytest

from agent.queue import ROW_OVERHEAD, OfflineQueue, QueueError


def _msg(body: str):
    return lambda seq: ("loaxa/v1/p/c/s/telemetry", f'{{"seq":{seq},"b":"{body}"}}'.encode())


def test_append_assigns_increasing_seq_and_peeks_oldest_first(tmp_path):
    q = OfflineQueue(tmp_path / "q.sqlite", 1_000_000)
    for i in range(5):
        q.append(_msg(f"m{i}"), ts_ms=1000 + i, live_session=None)
    rows = q.peek(limit=10)
    assert [r.seq for r in rows] == [0, 1, 2, 3, 4]
    assert [r.ts for r in rows] == [1000, 1001, 1002, 1003, 1004]
    assert rows[2].payload == b'{"seq":2,"b":"m2"}'
    assert [r.seq for r in q.peek(after_id=rows[1].id, limit=2)] == [2, 3]
    assert len(q) == 5


def test_remove_deletes_only_named_rows_and_frees_bytes(tmp_path):
    q = OfflineQueue(tmp_path / "q.sqlite", 1_000_000)
    ids = [q.append(_msg("x"), 1, 7).id for _ in range(4)]
    before = q.bytes
    assert q.remove([ids[0], ids[2], 999_999]) == 2
    assert [r.id for r in q.peek()] == [ids[1], ids[3]]
    assert q.bytes < before and len(q) == 2
    assert q.peek()[0].live_session == 7


def test_failed_build_stores_nothing_and_keeps_seq(tmp_path):
    q = OfflineQueue(tmp_path / "q.sqlite", 1_000_000)

    def bad(seq: int):
        raise ValueError("invalid payload")

    with pytest.raises(ValueError):
        q.append(bad, 1, None)
    assert len(q) == 0 and q.next_seq == 0
    assert q.append(_msg("ok"), 1, None).seq == 0


def test_bound_evicts_oldest_and_counts(tmp_path):
    def fixed(seq: int):  # same size whatever the seq
        return "t/x", b"y" * 100

    one = 100 + len("t/x") + ROW_OVERHEAD
    q = OfflineQueue(tmp_path / "q.sqlite", max_bytes=one * 10 + 5)
    for _ in range(25):
        q.append(fixed, 1, None)
    assert len(q) == 10
    assert q.bytes <= q.max_bytes
    assert [r.seq for r in q.peek(limit=100)] == list(range(15, 25))
    assert q.evicted_total == 15 and q.evicted_unreported == 15
    q.mark_evictions_reported(15)
    assert q.evicted_unreported == 0 and q.evicted_total == 15


def test_message_larger_than_bound_is_rejected(tmp_path):
    q = OfflineQueue(tmp_path / "q.sqlite", max_bytes=100)
    with pytest.raises(QueueError, match="exceeds the queue bound"):
        q.append(_msg("z" * 200), 1, None)
    assert len(q) == 0


def test_counters_survive_reopen(tmp_path):
    path = tmp_path / "q.sqlite"
    q = OfflineQueue(path, 300)
    for _ in range(6):
        q.append(_msg("a" * 50), 1, None)
    evicted, count, size = q.evicted_total, len(q), q.bytes
    q.close()
    q2 = OfflineQueue(path, 300)
    assert (q2.evicted_total, len(q2), q2.bytes) == (evicted, count, size)
    assert q2.append(_msg("b"), 1, None).seq == 6
    q2.ensure_seq_at_least(100)
    assert q2.append(_msg("c"), 1, None).seq == 100


_APPENDER = textwrap.dedent(
    """
    import sys
    from agent.queue import OfflineQueue
    q = OfflineQueue(sys.argv[1], 10_000_000)
    while True:
        m = q.append(lambda s: ("t/x", b"p" * 200 + str(s).encode()), 1, None)
        print(m.seq, flush=True)
    """
)


def test_reopen_after_kill_9_while_appending(tmp_path):
    path = tmp_path / "q.sqlite"
    proc = subprocess.Popen(
        [sys.executable, "-c", _APPENDER, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        last = -1
        for line in proc.stdout:
            last = int(line)
            if last >= 300:
                break
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(10)
        proc.stdout.close()
    assert last >= 300
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    q = OfflineQueue(path, 10_000_000)
    seqs = [r.seq for r in q.peek(limit=100_000)]
    # Everything append() returned for is there, contiguous; at most the in-flight ones more.
    assert seqs == list(range(len(seqs)))
    assert last + 1 <= len(seqs) == len(q)
    assert q.next_seq == len(seqs)


def test_damaged_file_is_moved_aside_and_replaced(tmp_path, caplog):
    path = tmp_path / "q.sqlite"
    path.write_bytes(b"this is not a database, the SD card went bad" * 100)
    with pytest.raises(QueueError, match="cannot open queue"):
        OfflineQueue(path, 1_000_000)
    q = OfflineQueue.open_or_quarantine(path, 1_000_000)
    assert len(q) == 0 and q.append(_msg("new"), 1, None).seq == 0
    aside = [p.name for p in tmp_path.iterdir() if ".damaged-" in p.name]
    assert len(aside) == 1 and "moved it to" in caplog.text


def test_default_bound_holds_a_week_of_worst_case_telemetry(tmp_path):
    """The arithmetic beside DEFAULT_MAX_BYTES, checked: 7 days at 60 s with 16 clusters."""
    from loaxa import payloads
    from loaxa.topics import station_topic

    topic = station_topic("cao-bang", "01273", "cb-01267", "telemetry")
    clusters = [{"id": i, "kind": "wired", "relay_on": True, "rms_dbfs": -20.25} for i in range(16)]

    def worst(seq: int):
        msg = payloads.Telemetry(
            station="cb-01267", session=123456, seq=seq, ts=1764230400000 + seq * 60_000,
            agent_uptime_s=8640000, uptime_s=12345678, amp="on", temp_c=31.5,
            audio={"rms_dbfs": -18.25, "peak_dbfs": -6.12, "clip_ratio": 0.0012,
                   "source": "pcm", "acoustic_dbfs": -30.5, "acoustic_corr": 0.812},
            power={"mains_v": 220.5, "battery_v": 13.21},
            fm={"forward_w": 50.1, "reflected_w": 1.2},
            clusters=clusters,
        )  # fmt: skip
        return topic, payloads.to_json(msg)

    q = OfflineQueue(tmp_path / "q.sqlite", synchronous="NORMAL")  # default max_bytes
    for _ in range(7 * 24 * 60):
        q.append(worst, 1, None)
    assert q.evicted_total == 0 and len(q) == 10_080
    print(f"a week of worst-case telemetry: {q.bytes / 2**20:.1f} MiB of {q.max_bytes / 2**20:.0f}")
