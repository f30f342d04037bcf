"""Cancel tokens and progress events shared by every long-running core job.

Long work (training, whole-volume inference, sync, report export) is a plain
generator that yields :class:`Progress` events (or subclasses with more
fields) and calls ``token.raise_if_cancelled()`` between steps. The owner of
the job cancels; the job only reads the token (as in ilastik's lazyflow
``cancel_token``). ``app/workers`` runs such generators on a thread.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Generator, TypeVar

from .errors import CancelledError

T = TypeVar("T")
E = TypeVar("E")


class CancelToken:
    """Set once by the owner; read by the worker. Thread-safe."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise CancelledError("Cancelled by the user; nothing was changed.")


NEVER_CANCELLED = CancelToken()  # convenience default: nobody holds it to cancel


@dataclass(frozen=True)
class Progress:
    """One step of a long job. ``done``/``total`` in the job's own units."""

    stage: str  # short label a user reads: "Brain extraction", "Epoch 3"...
    done: float = 0.0
    total: float = 0.0  # 0 when unknown
    message: str = ""
    eta_s: float | None = None

    @property
    def fraction(self) -> float | None:
        return (self.done / self.total) if self.total else None


class EtaClock:
    """Linear ETA from the rate so far."""

    def __init__(self) -> None:
        self.start = time.monotonic()

    def eta(self, done: float, total: float) -> float | None:
        if done <= 0 or total <= 0:
            return None
        elapsed = time.monotonic() - self.start
        return elapsed / done * max(total - done, 0.0)


def run_to_end(gen: Generator[object, None, T]) -> T:
    """Drive a progress generator without a UI; return its return value."""
    return run_collecting(gen)[1]


def run_collecting(gen: Generator[E, None, T]) -> tuple[list[E], T]:
    """Drive a progress generator to the end; return (every event, its return value)."""
    events: list[E] = []
    while True:
        try:
            events.append(next(gen))
        except StopIteration as stop:
            return events, stop.value  # type: ignore[no-any-return]
