"""Ownership by flock: a partition lock is exclusive, freed at once by kill -9, and members
count each other through their member locks."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from collector.group.locks import FileLock, GroupLockError, Membership, is_locked, partition_lock

ROOT = Path(__file__).resolve().parents[1]


def holder(folder: Path, k: int, member: str) -> subprocess.Popen:
    """Another process that joins as ``member`` and holds partition k until killed."""
    code = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from collector.group.locks import Membership, partition_lock
        m = Membership(Path({str(folder)!r}), {member!r}); m.join()
        assert partition_lock(m.folder, {k}).acquire()
        print("ready", flush=True)
        sys.stdin.read()  # until killed (or stdin closed)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def test_partition_lock_is_exclusive_even_within_one_process(tmp_path):
    a, b = partition_lock(tmp_path, 3), partition_lock(tmp_path, 3)
    assert a.acquire() and a.held
    assert not b.acquire() and not b.held
    assert is_locked(a.path)
    a.release()
    assert not is_locked(a.path)
    assert b.acquire()
    b.release()


def test_kill_9_frees_partition_and_membership(tmp_path):
    me = Membership(tmp_path, "me")
    me.join()
    proc = holder(tmp_path, 5, "other")
    try:
        assert me.live_members() == ["me", "other"]
        assert not partition_lock(tmp_path, 5).acquire()
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        lock = partition_lock(tmp_path, 5)
        assert lock.acquire()  # the kernel dropped the dead process's lock with it
        lock.release()
        assert me.live_members() == ["me"]
        assert not (tmp_path / "member-other.lock").exists()  # the dead member's file is gone
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        proc.stdout.close()
        proc.stdin.close()
        me.leave()
    assert not (tmp_path / "member-me.lock").exists()


def test_member_id_in_use_is_refused(tmp_path):
    a = Membership(tmp_path, "same")
    a.join()
    try:
        blocker = FileLock(tmp_path / ".joining-twin")
        assert blocker.acquire()
        with pytest.raises(GroupLockError, match="twin is already in use"):
            Membership(tmp_path, "twin").join()
        blocker.release()
    finally:
        a.leave()


def test_unusable_folder_is_a_clear_error(tmp_path):
    file = tmp_path / "not-a-folder"
    file.write_text("x")
    with pytest.raises(GroupLockError, match="group folder"):
        Membership(file / "group").join()
    with pytest.raises(GroupLockError, match="cannot open lock file"):
        partition_lock(file, 0).acquire()
