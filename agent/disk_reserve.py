"""A reserve file beside the offline queue, given up when the disk is full.

SQLite cannot delete rows or checkpoint its WAL on a completely full disk: both need to write
first. So the queue keeps ``<queue>.reserve`` (a preallocated file of ``size`` bytes); when an
append fails with SQLITE_FULL the reserve is deleted, which gives SQLite room to evict the
oldest messages and fold the WAL back into the database. When space returns (free space above
twice the reserve) the reserve is made again. Used by agent/queue.py (fault case 11).
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)
DEFAULT_RESERVE_BYTES = 512 * 1024  # > the WAL between checkpoints (wal_autocheckpoint=64)


class DiskReserve:
    def __init__(self, path: Path, size: int = DEFAULT_RESERVE_BYTES) -> None:
        self.path, self.size = path, size
        self._checks = 0

    @property
    def held(self) -> bool:
        return self.path.exists()

    def ensure(self) -> bool:
        """Create the reserve if it is missing and the disk has room for it twice over."""
        if self.held:
            return True
        try:
            st = os.statvfs(self.path.parent)
            if st.f_bavail * st.f_frsize < 2 * self.size:
                return False
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.posix_fallocate(fd, 0, self.size)
            finally:
                os.close(fd)
        except OSError as err:
            with contextlib.suppress(OSError):
                self.path.unlink()
            log.debug("no disk reserve %s: %s", self.path, err)
            return False
        return True

    def release(self) -> bool:
        """Give the reserve's space back to the file system; False if there was none."""
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        log.error("disk full: released the %d-byte reserve %s", self.size, self.path)
        return True

    def restore_now_and_then(self, every: int = 100) -> bool:
        """After appends: remake a released reserve (checked once per ``every`` calls); True
        when it was made again (space is back)."""
        self._checks += 1
        if self.size and self._checks % every == 0 and not self.held and self.ensure():
            log.warning("disk space is back: reserve %s made again", self.path)
            return True
        return False
