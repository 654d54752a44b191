"""Ownership by file lock: ``flock(LOCK_EX | LOCK_NB)`` on files in the group folder.

The kernel frees a process's locks the moment it dies, even by ``kill -9``, so a dead member's
partitions are free at once; nobody needs to notice the death first. ``flock`` locks an open file
description: two opens of one file in the same process exclude each other too, which is what a
member wants (one partition = one lock = one running collector).

Files (GROUP.md, version 1):

- ``partition-<k>.lock``: held by the member running partition k. Never deleted (deleting a
  locked file would let a second process lock a new file of the same name).
- ``member-<id>.lock``: held by each live member for its whole life. Created under a temporary
  name, locked, then renamed, so nobody can see it unlocked while its member lives. A member
  file nobody holds is a dead member's: the first prober that locks it deletes it.
"""

from __future__ import annotations

import errno
import fcntl
import os
import uuid
from pathlib import Path


class GroupLockError(OSError):
    """The group folder or a lock file cannot be used (missing, read-only, no flock support)."""


def _open(path: Path) -> int:
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as err:
        raise GroupLockError(err.errno, f"cannot open lock file {path}: {err.strerror}") from err


def _try_lock(fd: int, path: Path) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError as err:
        if err.errno in (errno.EAGAIN, errno.EACCES):
            return False
        raise GroupLockError(err.errno, f"flock on {path} failed: {err.strerror}") from err
    return True


class FileLock:
    """One non-blocking exclusive lock; ``acquire()`` says whether we got it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> bool:
        if self._fd is not None:
            return True
        fd = _open(self.path)
        if _try_lock(fd, self.path):
            self._fd = fd
            return True
        os.close(fd)
        return False

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the last descriptor drops the lock
            self._fd = None


def partition_lock(folder: Path, k: int) -> FileLock:
    return FileLock(folder / f"partition-{k}.lock")


def is_locked(path: Path) -> bool:
    """Whether some other open file description holds ``path`` (a probe: lock, then let go)."""
    lock = FileLock(path)
    if lock.acquire():
        lock.release()
        return False
    return True


class Membership:
    """This process's member lock, and the count of live members (itself included)."""

    PREFIX = "member-"

    def __init__(self, folder: Path, member_id: str | None = None) -> None:
        self.folder = folder
        self.id = member_id or f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.path = folder / f"{self.PREFIX}{self.id}.lock"
        self._lock: FileLock | None = None

    def join(self) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise GroupLockError(err.errno, f"group folder {self.folder}: {err.strerror}") from err
        tmp = FileLock(self.folder / f".joining-{self.id}")
        if not tmp.acquire():
            raise GroupLockError(errno.EEXIST, f"member id {self.id} is already in use")
        os.replace(tmp.path, self.path)  # the inode, and so the lock, moves with the name
        tmp.path = self.path
        self._lock = tmp

    def leave(self) -> None:
        if self._lock is not None:
            self.path.unlink(missing_ok=True)
            self._lock.release()
            self._lock = None

    def live_members(self) -> list[str]:
        """Ids of live members, sorted; the files of dead ones are removed on the way."""
        live = []
        for path in sorted(self.folder.glob(f"{self.PREFIX}*.lock")):
            member = path.name[len(self.PREFIX) : -len(".lock")]
            if member == self.id:
                live.append(member)
                continue
            probe = FileLock(path)
            if probe.acquire():  # nobody holds it: its member is gone
                path.unlink(missing_ok=True)
                probe.release()
            else:
                live.append(member)
        return live
