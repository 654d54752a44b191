"""The writer thread: drains the spool to InfluxDB in batches, deleting rows only once stored.

A batch is the oldest ``batch_size`` rows, written as soon as that many are spooled or after
``flush_interval_ms``. Each chunk of rows covers an id range of the spool; the range is deleted
only after its points were accepted or dead-lettered, so nothing leaves the spool unstored.
Failure handling (telegraf-style, see errors.py):

- 400/422: dead-letter the points the message names, write the rest again (rewrites overwrite
  the same points); if none can be named, bisect until single refused lines remain;
- 413: split in halves (a single line that is still too large is dead-lettered);
- 429/5xx/connection: exponential backoff with jitter (Retry-After honoured, capped);
- 401/403/404: operator alarm (log + counter), same backoff; the spool keeps growing.
"""

from __future__ import annotations

import collections
import logging
import random
import threading
import time
from collections.abc import Callable

from collector.storage.classify import bad_points
from collector.storage.config import InfluxConfig
from collector.storage.dead_letter import DeadLetter
from collector.storage.errors import (
    BatchTooLargeError,
    PartialWriteError,
    RetryableWriteError,
    WriteAlarmError,
)
from collector.storage.metrics import StorageMetrics
from collector.storage.spool import Spool
from collector.storage.writers import Writer

log = logging.getLogger(__name__)

Rows = list[tuple[int, str]]
Chunk = tuple[int, int, Rows]  # first id, last id (the spool range it covers), rows


class SpoolDrainer:
    def __init__(
        self,
        spool: Spool,
        writer: Writer,
        dead_letter: DeadLetter,
        config: InfluxConfig,
        metrics: StorageMetrics | None = None,
        rand: Callable[[], float] = random.random,
        on_alarm: Callable[[WriteAlarmError], None] | None = None,
    ) -> None:
        self.spool, self.writer, self.dead_letter, self.config = spool, writer, dead_letter, config
        self.metrics = metrics or StorageMetrics()
        self._rand = rand
        self._on_alarm = on_alarm  # e.g. CREATE DATABASE again after "database not found"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._attempt = 0  # consecutive failures, for the backoff

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="storage-drainer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 15.0) -> None:
        """Stop after the current request; unwritten rows stay in the spool."""
        self._stop.set()
        self.spool.wake()
        if self._thread:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        interval = self.config.flush_interval_ms / 1000.0
        while not self._stop.is_set():
            if self.spool.depth < self.config.batch_size:
                self.spool.wait_for(self.config.batch_size, interval, self._stop.is_set)
            if self._stop.is_set():
                break
            try:
                self.drain_once()
            except Exception:  # never let the thread die: the spool keeps everything
                log.exception("storage drainer: unexpected error; retrying")
                self._backoff(None)

    def drain_once(self) -> int:
        """Write the oldest batch (with retries until done or stopped); rows removed."""
        rows = self.spool.peek(self.config.batch_size)
        if not rows:
            return 0
        pending: collections.deque[Chunk] = collections.deque([(rows[0][0], rows[-1][0], rows)])
        removed = 0
        while pending and not self._stop.is_set():
            chunk = pending.popleft()
            done = self._try(chunk, pending)
            if done:
                removed += self.spool.delete_range(chunk[0], chunk[1])
        return removed

    def _try(self, chunk: Chunk, pending: collections.deque[Chunk]) -> bool:
        """One write attempt; True if the chunk's range may be deleted from the spool."""
        rows = chunk[2]
        lines = [line for _, line in rows]
        start = time.monotonic()
        try:
            self.writer.write(lines)
        except PartialWriteError as err:
            return self._partial(chunk, err, pending)
        except BatchTooLargeError as err:
            if len(rows) == 1:
                self._dead([(rows[0][1], "too_large")], str(err))
                return True
            self.metrics.splits_total += 1
            pending.extendleft(reversed(_halves(chunk)))
            return False
        except WriteAlarmError as err:
            if self.metrics.alarm_active != err.alarm:
                log.error("ALARM storage: %s (points stay in the spool)", err)
            self.metrics.alarm(err.alarm, str(err))
            if self._on_alarm:
                self._on_alarm(err)
            self._backoff(None)
            pending.appendleft(chunk)
            return False
        except RetryableWriteError as err:
            self.metrics.retries_total += 1
            self.metrics.last_error = str(err)
            log.warning("storage write failed, will retry: %s", err)
            self._backoff(err.retry_after_s)
            pending.appendleft(chunk)
            return False
        self._attempt = 0
        self.metrics.written(len(lines), time.monotonic() - start)
        return True

    def _partial(self, chunk: Chunk, err: PartialWriteError, pending: collections.deque) -> bool:
        first, last, rows = chunk
        bad = bad_points(err.body, [line for _, line in rows], err.line_numbers, err.originals)
        if bad:
            self._dead([(rows[i][1], bad[i]) for i in sorted(bad)], err.body)
            good = [row for i, row in enumerate(rows) if i not in bad]
            if good:
                pending.appendleft((first, last, good))
                return False
            return True
        if "beyond retention policy" in err.body:  # the server dropped them: nothing to redo
            self.metrics.rejected("beyond_retention", _dropped(err.body))
            log.warning("storage: %s", err)
            return True
        if len(rows) == 1:
            self._dead([(rows[0][1], "rejected")], err.body)
            return True
        self.metrics.splits_total += 1
        pending.extendleft(reversed(_halves(chunk)))
        return False

    def _dead(self, refused: list[tuple[str, str]], error: str) -> None:
        """Dead-letter (line, reason) pairs durably, then count them."""
        self.dead_letter.add((line, reason, error) for line, reason in refused)
        for _, reason in refused:
            self.metrics.rejected(reason)
        log.error(
            "storage: %d point(s) refused, sent to %s: %s",
            len(refused),
            self.dead_letter.path,
            error[:300],
        )

    def _backoff(self, retry_after_s: float | None) -> None:
        c = self.config
        if retry_after_s is not None:
            delay = min(retry_after_s, c.retry_max_ms / 1000.0)
        else:
            delay = min(c.retry_initial_ms * c.retry_multiplier**self._attempt, c.retry_max_ms)
            delay = delay / 1000.0 * (1.0 + c.retry_jitter * (2.0 * self._rand() - 1.0))
        self._attempt = min(self._attempt + 1, 64)  # a days-long outage must not overflow
        self.metrics.last_backoff_s = max(0.0, delay)
        self._stop.wait(self.metrics.last_backoff_s)


def _halves(chunk: Chunk) -> list[Chunk]:
    first, last, rows = chunk
    mid = len(rows) // 2
    # The first half's range ends just before the second half's first row, so ids of rows
    # dead-lettered earlier (gaps) are still covered by one of the two ranges.
    return [(first, rows[mid][0] - 1, rows[:mid]), (rows[mid][0], last, rows[mid:])]


def _dropped(message: str) -> int:
    tail = message.rsplit("dropped=", 1)
    return int(tail[1].strip()) if len(tail) == 2 and tail[1].strip().isdigit() else 1
