"""Counters the agent keeps across restarts, in the state directory (``[state] dir``).

Files (format version 1: one decimal integer and a newline, replaced atomically)::

    <dir>/session   MQTT session counter, +1 before every connection attempt (like Sparkplug's
                    bdSeq); sent in the status "online" and in the Last Will "offline".
    <dir>/seq       a floor for the per-message seq. The authoritative seq is taken inside the
                    queue's transaction (agent/queue.py); this copy, written at each connect
                    and at stop, keeps seq increasing even if the queue file is deleted.

Writes go to a temporary file, are fsynced, then renamed over the old one, so a power cut
leaves either the old or the new value, never a torn file.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)


class CounterFile:
    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> int:
        try:
            return int(self.path.read_text().strip() or 0)
        except FileNotFoundError:
            return 0
        except ValueError:
            # A corrupt counter must not stop the agent; the session only needs to grow.
            log.error("%s is not an integer; starting the counter from 0", self.path)
            return 0

    def write(self, value: int) -> None:
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w") as f:
            f.write(f"{value}\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


class AgentState:
    def __init__(self, state_dir: str | Path) -> None:
        self.dir = Path(state_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._session = CounterFile(self.dir / "session")
        self._seq = CounterFile(self.dir / "seq")

    @property
    def session(self) -> int:
        return self._session.read()

    def next_session(self) -> int:
        """Increment and persist the session counter before a connection attempt."""
        value = self._session.read() + 1
        self._session.write(value)
        return value

    @property
    def seq_floor(self) -> int:
        return self._seq.read()

    def save_seq_floor(self, next_seq: int) -> None:
        if next_seq > self._seq.read():
            self._seq.write(next_seq)
