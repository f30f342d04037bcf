"""core.lock_files: the one lock-file helper behind the case lock, the status lock and the lease."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest

from core.errors import InputError
from core.lock_files import create_exclusive, lock_age, process_alive, short_lock, take_aside


def test_process_alive_tells_this_process_from_an_ended_one():
    assert process_alive(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert not process_alive(child.pid)


def test_create_exclusive_has_one_winner_and_never_follows_a_link(tmp_path):
    lock = tmp_path / "x.lock"
    assert create_exclusive(lock, b"first")
    assert not create_exclusive(lock, b"second")
    assert lock.read_bytes() == b"first"
    take_aside(lock)
    assert not lock.exists() and list(tmp_path.iterdir()) == []
    take_aside(lock)  # already gone: nothing to do
    target = tmp_path / "elsewhere"
    (tmp_path / "link.lock").symlink_to(target)
    assert not create_exclusive(tmp_path / "link.lock", b"x")  # the link is someone's lock, not a way out
    assert not target.exists()


def test_short_lock_waits_for_the_holder_then_releases(tmp_path):
    lock = tmp_path / ".status.lock"
    order = []

    def other():
        with short_lock(lock, "the file"):
            order.append("other")

    with short_lock(lock, "the file"):
        assert lock.read_text() == str(os.getpid())
        t = threading.Thread(target=other)
        t.start()
        time.sleep(0.1)
        order.append("me")
    t.join(5)
    assert order == ["me", "other"] and not lock.exists() and lock_age(lock) is None


def test_short_lock_gives_up_on_a_live_holder_and_takes_a_stale_one_over(tmp_path):
    lock = tmp_path / ".status.lock"
    lock.write_text("123")
    with pytest.raises(InputError, match="the file is being changed by another window"):
        with short_lock(lock, "the file", wait_s=0.1):
            pass
    old = time.time() - 60
    os.utime(lock, (old, old))  # its writer died mid-update
    with short_lock(lock, "the file", wait_s=0.1, stale_s=30):
        assert lock.read_text() == str(os.getpid())
    assert list(tmp_path.iterdir()) == []
