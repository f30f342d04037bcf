"""Lock files: the one way to create one, to tell a dead holder, and to take a stale one over.

Three locks use it: a case open for editing (:mod:`core.annotation.case_lock`),
the short lock around one update of a folder's case status file
(:func:`short_lock`, used by :mod:`core.cases.worklist`), and the ring's lease,
whose holder may be a process of this machine that no longer exists
(:mod:`core.ring.lease`, which keeps its lease on the ring's server and uses
only :func:`process_alive` from here).

A lock is a file created with ``O_CREAT | O_EXCL``: exactly one creator wins,
also on a network share. What makes a lock stale is each lock's own rule; a
stale lock is renamed aside before it is deleted, so that of several takers
only the one whose rename succeeds goes on to create the next lock.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from pathlib import Path
from typing import Iterator

from .errors import InputError


def process_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this machine (one owned by another user counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def create_exclusive(path: Path, data: bytes) -> bool:
    """Create ``path`` holding ``data`` unless it exists (then False). Never follows
    a link at ``path``; a write that fails removes the file again (and raises)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
    except FileExistsError:
        return False
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise
    return True


def lock_age(path: Path) -> float | None:
    """Seconds since the lock at ``path`` was written or refreshed; None when there is none."""
    try:
        return time.time() - Path(path).stat().st_mtime
    except FileNotFoundError:
        return None


def take_aside(path: Path) -> None:
    """Remove a stale lock: renamed first, so that only one taker wins the next exclusive create."""
    aside = path.with_name(f"{path.name}.stale-{uuid.uuid4().hex[:8]}")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return
    with contextlib.suppress(OSError):
        aside.unlink()


@contextlib.contextmanager
def short_lock(path: Path, what: str, wait_s: float = 10.0, stale_s: float = 30.0) -> Iterator[None]:
    """Hold ``path`` around one short read-modify-write of ``what`` (e.g. "the case
    status file"): waits up to ``wait_s`` for another holder, and takes over a lock
    older than ``stale_s`` (its writer died mid-update)."""
    path = Path(path)
    deadline = time.monotonic() + wait_s
    while True:
        try:
            if create_exclusive(path, str(os.getpid()).encode()):
                break
        except OSError as exc:
            raise InputError(f"{path.parent}: cannot lock {what} ({exc.strerror or exc}).") from None
        age = lock_age(path)
        if age is None:  # released meanwhile
            continue
        if age > stale_s:
            take_aside(path)
            continue
        if time.monotonic() > deadline:
            raise InputError(f"{path.parent}: {what} is being changed by another window; try again.")
        time.sleep(0.02)
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
