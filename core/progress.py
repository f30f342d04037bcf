"""Cancel tokens and progress events shared by every long-running core job.

Long work (training, whole-volume inference, sync, report export) is a plain
generator that yields :class:`Progress` events (or subclasses with more
fields) and calls ``token.raise_if_cancelled()`` between steps. The owner of
the job cancels; the job only reads the token (as in ilastik's lazyflow
``cancel_token``). ``app/workers`` runs such generators on a thread.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Callable, Generator, Generic, TypeVar

from .errors import CancelledError

T = TypeVar("T")
E = TypeVar("E")
R = TypeVar("R")


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


def format_eta(seconds: float | None) -> str:
    """ "about 3 min 05 s left", "about 2 h 10 min left"; "" when unknown. The one
    wording of a time estimate, for the command line and the application."""
    if seconds is None or not math.isfinite(seconds):
        return ""
    s = int(round(seconds))
    if s <= 0:  # done, or about to be: nothing worth saying
        return ""
    if s >= 3600:
        return f"about {s // 3600} h {s // 60 % 60:02d} min left"
    if s >= 60:
        return f"about {s // 60} min {s % 60:02d} s left"
    return f"about {s} s left"


def drive(gen: Generator[E, None, T], on_event: Callable[[E], object] | None = None) -> T:
    """Run a progress generator to its end, handing each event to ``on_event``;
    return the generator's return value. The one loop that drives long work:
    the CLI's printers, the GUI's worker thread and the child process use it."""
    while True:
        try:
            event = next(gen)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        if on_event is not None:
            on_event(event)


class relay(Generic[E, R, T]):  # noqa: N801 (used like a function: ``yield from relay(...)``)
    """``result = yield from relay(gen, on_event, convert)``: pass a generator's
    events on (through ``convert`` when given), calling ``on_event`` with each
    first, and take its return value. An iterator, not a loop: ``yield from``
    ends with the inner generator's ``StopIteration`` value, and closing the
    outer generator closes the inner one."""

    def __init__(
        self,
        gen: Generator[E, None, T],
        on_event: Callable[[E], object] | None = None,
        convert: Callable[[E], R] | None = None,
    ) -> None:
        self.gen, self.on_event, self.convert = gen, on_event, convert

    def __iter__(self) -> "relay[E, R, T]":
        return self

    def __next__(self) -> R:
        event = next(self.gen)  # its StopIteration carries the return value to ``yield from``
        if self.on_event is not None:
            self.on_event(event)
        return self.convert(event) if self.convert is not None else event  # type: ignore[return-value]

    def close(self) -> None:
        self.gen.close()


def run_to_end(gen: Generator[object, None, T]) -> T:
    """Drive a progress generator without a UI; return its return value."""
    return drive(gen)


def run_collecting(gen: Generator[E, None, T]) -> tuple[list[E], T]:
    """Drive a progress generator to the end; return (every event, its return value)."""
    events: list[E] = []
    return events, drive(gen, events.append)
