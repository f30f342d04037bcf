"""Run a progress generator in a child process, as a progress generator.

A training turn is minutes of torch and numpy work; in the desktop
application's own process it would compete with the GUI thread for the
interpreter lock (numpy and scipy hold it in long calls), and a crash in
native code would take the open case with it. :func:`run_in_child` starts a
fresh interpreter (``spawn``: forking a process that runs Qt threads is
unsafe), runs ``fn(*args, token)`` there and passes its events, its return
value or its exception back over a queue. Cancelling our token sets an event
the child turns into its own token's cancel, so the child stops the way the
generator would in-process (a ring turn releases its lease, publishes
nothing); a child that ignores it is terminated after ``stop_timeout_s``.
``fn``, its arguments, events and result must pickle.
"""

from __future__ import annotations

import multiprocessing as mp
import pickle
import queue
import threading
import time
import traceback
from typing import Any, Callable, Generator

from .errors import HemaRelayError
from .progress import CancelToken, Progress, drive


class ChildStoppedError(HemaRelayError):
    """The child ignored a cancel and was terminated."""


def _child_main(fn: Callable[..., Generator], args: tuple, q, cancel) -> None:
    token = CancelToken()

    # ``cancel`` is a lock-free shared byte, polled: a multiprocessing.Event would
    # leave a dead waiter behind when this process exits, and the parent's
    # Event.set() then blocks forever waiting for it to acknowledge.
    def watch() -> None:
        while not cancel.value:
            time.sleep(0.1)
        token.cancel()

    threading.Thread(target=watch, daemon=True).start()
    try:
        value = drive(fn(*args, token), lambda ev: q.put(("event", ev)))
        q.put(("done", value))
    except BaseException as exc:  # noqa: BLE001 - everything goes back to the parent
        if not isinstance(exc, HemaRelayError):  # a bug: keep its traceback in the log (stderr)
            traceback.print_exc()
        try:
            pickle.loads(pickle.dumps(exc))  # some exceptions pickle but cannot be rebuilt
        except Exception:  # noqa: BLE001
            exc = HemaRelayError(f"{type(exc).__name__}: {exc}")
        q.put(("error", exc))
    finally:
        q.close()
        q.join_thread()


def run_in_child(
    fn: Callable[..., Generator[Progress, None, Any]],
    *args: Any,
    token: CancelToken,
    what: str = "The background process",
    stop_timeout_s: float = 60.0,
) -> Generator[Progress, None, Any]:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    cancel = ctx.RawValue("b", 0)
    proc = ctx.Process(target=_child_main, args=(fn, args, q, cancel), daemon=True)
    proc.start()
    cancelled_at: float | None = None
    finished = False
    try:
        while True:
            if token.cancelled and cancelled_at is None:
                cancel.value = 1
                cancelled_at = time.monotonic()
            try:
                kind, payload = q.get(timeout=0.1)
            except queue.Empty:
                if not proc.is_alive():
                    try:  # it may have put its last message just before exiting
                        kind, payload = q.get(timeout=1.0)
                    except queue.Empty:
                        raise HemaRelayError(
                            f"{what} stopped unexpectedly (exit code {proc.exitcode}); "
                            "nothing it was doing was published."
                        ) from None
                elif cancelled_at is not None and time.monotonic() - cancelled_at > stop_timeout_s:
                    proc.terminate()
                    raise ChildStoppedError(
                        f"{what} did not stop within {stop_timeout_s:g} s of being "
                        "cancelled and was ended; anything it held on the ring "
                        "server (its lease) expires by itself."
                    ) from None
                else:
                    continue
            if kind == "event":
                yield payload
            else:
                finished = True
                if kind == "done":
                    return payload
                raise payload
    finally:
        if not finished and proc.is_alive():  # we were closed or cancelled: ask it to stop
            cancel.value = 1
        proc.join(5 if finished else stop_timeout_s)
        if proc.is_alive():
            proc.terminate()
            proc.join(5)
        q.close()
