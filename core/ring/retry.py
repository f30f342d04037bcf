"""Running a turn's server operations through lost connections, and keeping its lease.

:class:`Retry` runs one operation (or one chunked transfer) and, when the
connection drops (:class:`ServerUnreachableError`), waits with exponential
backoff and runs it again, for at most ``retry_for_s``; the waits are progress
events, so a person sees "Ring server unreachable ... retrying in 4 s".
:class:`LeaseKeeper` renews the lease between events while the site holds it.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Callable, Generator, Iterator, TypeVar

from ..progress import CancelToken, Progress, relay
from .errors import ServerUnreachableError
from .lease import Lease, renew
from .transport import Transport

if TYPE_CHECKING:
    from .keys import TurnSigner

log = logging.getLogger(__name__)
T = TypeVar("T")

STAGE_RETRY = "Ring server unreachable"


def sleep_unless_cancelled(seconds: float, token: CancelToken) -> None:
    end = time.monotonic() + seconds
    while True:
        token.raise_if_cancelled()
        left = end - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(left, 0.1))


class Retry:
    """Runs server operations, retrying lost connections with exponential backoff:
    the first wait ``backoff_s``, doubled up to ``backoff_max_s``, for ``retry_for_s``."""

    def __init__(
        self, token: CancelToken, retry_for_s: float, backoff_s: float = 1.0, backoff_max_s: float = 30.0
    ) -> None:
        self.token, self.retry_for_s = token, retry_for_s
        self.backoff_s, self.backoff_max_s = backoff_s, backoff_max_s
        self.tick: Callable[[], None] = lambda: None  # lease renewal hook while holding it

    def _waits(self) -> Iterator[float]:
        delay, deadline = self.backoff_s, time.monotonic() + self.retry_for_s
        while time.monotonic() + delay <= deadline:
            yield delay
            delay = min(delay * 2, self.backoff_max_s)

    def _backoff(self, exc: ServerUnreachableError, waits: Iterator[float]) -> Generator[Progress, None, None]:
        delay = next(waits, None)
        if delay is None:
            raise ServerUnreachableError(f"{exc} Gave up after retrying for {self.retry_for_s:g} s.") from exc
        log.warning("%s; retrying in %.1f s", exc, delay)
        yield Progress(STAGE_RETRY, message=f"{exc} Retrying in {delay:.0f} s.")
        sleep_unless_cancelled(delay, self.token)

    def call(self, fn: Callable[[], T]) -> Generator[Progress, None, T]:
        waits = self._waits()
        while True:
            try:
                return fn()
            except ServerUnreachableError as exc:
                yield from self._backoff(exc, waits)

    def transfer(
        self, make: Callable[[], Generator[int, None, T] | Iterator[int]], stage: str, total: int
    ) -> Generator[Progress, None, T]:
        """Run a chunked read/write, yielding byte progress; restarted from scratch after a drop."""
        waits = self._waits()
        while True:
            try:
                return (
                    yield from relay(
                        make(),
                        lambda _: self.tick(),
                        lambda done: Progress(
                            stage, done=float(done), total=float(total), message=f"{_size(done)} of {_size(total)}"
                        ),
                    )
                )
            except ServerUnreachableError as exc:
                yield from self._backoff(exc, waits)


def _size(n: float) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"


class LeaseKeeper:
    """Renews our lease (signed again by ``signer`` when it was signed) when a third
    of its time has passed; called between events."""

    def __init__(self, transport: Transport, lease: Lease, ttl_s: float, signer: "TurnSigner | None" = None) -> None:
        self.transport, self.lease, self.ttl_s, self.signer = transport, lease, ttl_s, signer
        self.last = time.monotonic()

    def tick(self) -> None:
        if time.monotonic() - self.last < self.ttl_s / 3:
            return
        try:
            self.lease = renew(self.transport, self.lease, self.ttl_s, self.signer)
            self.last = time.monotonic()
        except ServerUnreachableError as exc:  # try again at the next event; expiry is far
            log.warning("could not renew the ring lease: %s", exc)
