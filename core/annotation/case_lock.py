"""One writer per case: a lock file beside the CT while a case is open for editing.

Two application windows (or a window and a command) on one case folder would
otherwise overwrite each other's mask, share one recovery file, and race on
the case status. The first to open a case creates ``.case_<id>.lock``
exclusively (``O_CREAT | O_EXCL``: exactly one wins, also on a network share)
with who holds it; the others open the case read-only and say who. A lock whose
process has ended on this machine, or that was not refreshed for
``STALE_AFTER_S`` (a crashed machine on a shared folder), is stale and taken over.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import socket
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import InputError
from ..lock_files import create_exclusive, lock_age, process_alive, take_aside

STALE_AFTER_S = 12 * 3600.0  # the holder refreshes the lock on every save and autosave
INSTANCE = uuid.uuid4().hex  # this process: its own locks are never "someone else's"


class CaseLockedError(InputError):
    """The case is open for editing elsewhere; ``holder`` says by whom."""

    def __init__(self, message: str, holder: "LockHolder") -> None:
        super().__init__(message)
        self.holder = holder


@dataclass(frozen=True)
class LockHolder:
    user: str
    host: str
    pid: int
    since: str  # local time, ISO 8601
    instance: str

    def describe(self) -> str:
        where = "this computer" if self.host == socket.gethostname() else f"computer {self.host}"
        return f"user '{self.user}' on {where} (process {self.pid}, since {self.since[:19].replace('T', ' ')})"


def read_holder(path: Path) -> LockHolder | None:
    """Who holds the lock at ``path``; None when free (or unreadable: being written)."""
    try:
        d = json.loads(Path(path).read_text(encoding="utf-8"))
        return LockHolder(str(d["user"]), str(d["host"]), int(d["pid"]), str(d["since"]), str(d["instance"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def is_stale(path: Path, holder: LockHolder | None) -> bool:
    age = lock_age(path)
    if age is None:
        return True
    if holder is None:
        return age > 60.0  # a lock file nobody finished writing in a minute
    if holder.host == socket.gethostname() and holder.instance != INSTANCE and not process_alive(holder.pid):
        return True
    return age > STALE_AFTER_S


def held_by_other(path: Path) -> LockHolder | None:
    """The holder of ``path`` when it is a live lock of another process."""
    holder = read_holder(path)
    if not Path(path).exists() or is_stale(path, holder):
        return None
    if holder is None:  # being written right now
        return LockHolder("?", "?", 0, "", "")
    return None if holder.instance == INSTANCE else holder


class CaseLock:
    """This process's lock on one case (see the module docstring)."""

    def __init__(self, path: Path, holder: LockHolder) -> None:
        self.path, self.holder = Path(path), holder

    @classmethod
    def acquire(cls, path: Path, user: str, what: str) -> "CaseLock":
        """Take the lock or raise :class:`CaseLockedError` naming the holder."""
        path = Path(path)
        me = LockHolder(
            user,
            socket.gethostname(),
            os.getpid(),
            _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
            INSTANCE,
        )
        for _ in range(3):
            try:
                if create_exclusive(path, json.dumps(asdict(me)).encode("utf-8")):
                    return cls(path, me)
            except OSError as exc:
                raise InputError(
                    f"{path}: cannot create the case lock ({exc.strerror or exc}); "
                    "the folder must be writable to edit its cases."
                ) from None
            holder = read_holder(path)
            if holder is not None and holder.instance == INSTANCE:
                return cls(path, holder)  # this process opened the case again
            if is_stale(path, holder):
                take_aside(path)  # a dead holder's lock: move it away and try again
                continue
            who = holder.describe() if holder else "another program (starting up)"
            raise CaseLockedError(
                f"{what} is open for editing by {who}; it is opened read-only here "
                "(edits cannot be saved until that window closes it).",
                holder or LockHolder("?", "?", 0, "", ""),
            )
        raise InputError(f"{path}: the case lock keeps changing; try again.")

    def held(self) -> bool:
        holder = read_holder(self.path)
        return holder is not None and holder.instance == self.holder.instance

    def check(self, what: str) -> None:
        """Before a write: InputError when the lock was lost (taken over as stale)."""
        if not self.held():
            other = read_holder(self.path)
            who = other.describe() if other else "nobody (the lock file was removed)"
            raise InputError(f"{what}: this window no longer holds the case's lock (now {who}); nothing was written.")
        with contextlib.suppress(OSError):
            os.utime(self.path)  # refresh: a live holder is never stale

    def release(self) -> None:
        if self.held():
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
