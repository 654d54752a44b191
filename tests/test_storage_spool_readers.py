"""The spool's drainer connection: peeks do not wait for an append in progress (WAL reader),
and the byte/row counters kept by appends, deletes and drops match the file after reopening."""

from __future__ import annotations

import threading

from hypothesis import given, settings
from hypothesis import strategies as st

from collector.storage.config import SpoolFullPolicy
from collector.storage.spool import Spool
from tests.servers import wait_until


def test_peek_reads_committed_rows_while_an_append_holds_the_lock(tmp_path):
    spool = Spool(tmp_path / "s.sqlite")
    try:
        spool.append(["a 1", "b 2"])
        seen: list[list[str]] = []
        with spool._lock:  # what append holds from BEGIN to COMMIT (the fsync)
            spool._db.execute("BEGIN IMMEDIATE")
            spool._db.execute("INSERT INTO lines(line) VALUES ('c 3')")
            reader = threading.Thread(target=lambda: seen.append(list(spool.peek(10))))
            reader.start()
            wait_until(lambda: not reader.is_alive(), 20, what="peek during an open append")
            spool._db.execute("COMMIT")
        assert [[line for _, line in rows] for rows in seen] == [["a 1", "b 2"]]
        assert [line for _, line in spool.peek(10)] == ["a 1", "b 2", "c 3"]
    finally:
        spool.close()


LINES = st.lists(st.text(alphabet="aò x=1,", min_size=1, max_size=12), min_size=1, max_size=5)
STEPS = st.lists(st.one_of(LINES, st.integers(1, 4)), max_size=12)  # append lines / drain n


@settings(max_examples=40, deadline=None)
@given(steps=STEPS, drop=st.booleans())
def test_counters_match_the_file(tmp_path_factory, steps, drop):
    path = tmp_path_factory.mktemp("spool") / "s.sqlite"
    policy = SpoolFullPolicy.DROP_OLDEST if drop else SpoolFullPolicy.REJECT
    spool = Spool(path, max_bytes=10**6 if not drop else 120, full_policy=policy, fsync=False)
    expected: list[str] = []
    for step in steps:
        if isinstance(step, int):
            rows = spool.peek(step)
            if rows:
                assert spool.delete_range(rows[0][0], rows[-1][0]) == len(rows)
                del expected[: len(rows)]
        elif sum(len(x.encode()) for x in step) <= spool.max_bytes:
            spool.append(step)
            expected.extend(step)
            if drop:  # the oldest lines may have gone; the spool keeps a suffix in order
                kept = [line for _, line in spool.peek(10**6)]
                assert kept == expected[len(expected) - len(kept) :]
                expected = kept
    depth, size = spool.depth, spool.bytes
    spool.close()
    again = Spool(path, max_bytes=spool.max_bytes, full_policy=policy, fsync=False)
    try:
        assert [line for _, line in again.peek(10**6)] == expected
        assert (
            (again.depth, again.bytes)
            == (depth, size)
            == (
                len(expected),
                sum(len(x.encode()) for x in expected),
            )
        )
    finally:
        again.close()
