"""The one runner for long work: a core progress generator on a worker thread.

Core jobs (open a CT, save a mask, export reports, predict, sync, evaluate,
train a turn in a child process) are generators that yield :class:`~core.progress.Progress` and check
a :class:`~core.progress.CancelToken`. :func:`start_job` runs one on a
``QThreadPool`` thread and re-emits what happens as Qt signals on the GUI
thread (the superqt ``GeneratorWorker`` pattern): ``progress(event)``, then
exactly one of ``finished(return value)`` or ``errored(exception)``.

The worker emits through a private emitter connected with an explicit
``QueuedConnection``: every handler runs on the GUI thread, in the order the
events were produced (as ilastik's ProgressDisplayManager does), whatever the
thread the emitter object happens to live in. The owner cancels with
:meth:`Job.cancel`; the generator only reads the token (lazyflow style) and
raises :class:`~core.errors.CancelledError`, delivered through ``errored``.
"""

from __future__ import annotations

from typing import Any, Callable, Generator

from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool, Signal, Slot

from core.progress import CancelToken, Progress, drive

JobFactory = Callable[[CancelToken], Generator[Progress, None, Any]]

# Started jobs, until they end: keeps a job without a Qt parent alive while its
# worker runs (its signals would otherwise go to a collected object).
_RUNNING: set["Job"] = set()


class _Emitter(QObject):
    progress = Signal(object)
    done = Signal(object)
    failed = Signal(object)


class _Runnable(QRunnable):
    def __init__(self, factory: JobFactory, token: CancelToken, emitter: _Emitter) -> None:
        super().__init__()
        self.setAutoDelete(True)
        self._factory = factory
        self._token = token
        self._emitter = emitter

    def run(self) -> None:  # worker thread
        try:
            value = drive(self._factory(self._token), self._pass_on)
            self._emit(self._emitter.done, value)
        except BaseException as exc:  # noqa: BLE001 - every failure must reach the GUI
            self._emit(self._emitter.failed, exc)

    def _pass_on(self, event) -> None:
        if not self._emit(self._emitter.progress, event):
            self._token.cancel()  # nobody listens any more (the window closed)

    @staticmethod
    def _emit(signal, value) -> bool:
        try:
            signal.emit(value)
            return True
        except RuntimeError:  # the window that owned the job was destroyed meanwhile
            return False


class Job(QObject):
    """One running generator. Signals arrive on the GUI thread."""

    progress = Signal(object)  # core.progress.Progress (or a subclass)
    finished = Signal(object)  # the generator's return value
    errored = Signal(object)  # the exception (CancelledError when cancelled)

    def __init__(self, name: str, factory: JobFactory, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self.token = CancelToken()
        self.running = False
        self._factory = factory
        self._emitter = _Emitter(self)  # a Qt child: never destroyed on the worker thread
        queued = Qt.ConnectionType.QueuedConnection
        self._emitter.progress.connect(self._on_progress, queued)
        self._emitter.done.connect(self._on_done, queued)
        self._emitter.failed.connect(self._on_failed, queued)

    def start(self, pool: QThreadPool | None = None) -> "Job":
        self.running = True
        _RUNNING.add(self)
        (pool or QThreadPool.globalInstance()).start(_Runnable(self._factory, self.token, self._emitter))
        return self

    def cancel(self) -> None:
        self.token.cancel()

    @Slot(object)
    def _on_progress(self, event: Progress) -> None:
        self.progress.emit(event)

    @Slot(object)
    def _on_done(self, value: Any) -> None:
        self.running = False
        _RUNNING.discard(self)
        self.finished.emit(value)

    @Slot(object)
    def _on_failed(self, exc: BaseException) -> None:
        self.running = False
        _RUNNING.discard(self)
        self.errored.emit(exc)


def start_job(
    name: str,
    factory: JobFactory,
    *,
    on_progress: Callable[[Progress], None] | None = None,
    on_finished: Callable[[Any], None] | None = None,
    on_error: Callable[[BaseException], None] | None = None,
    parent: QObject | None = None,
    pool: QThreadPool | None = None,
) -> Job:
    """Create, connect and start a :class:`Job` (on ``pool``, default the global pool)."""
    job = Job(name, factory, parent)
    if on_progress is not None:
        job.progress.connect(on_progress)
    if on_finished is not None:
        job.finished.connect(on_finished)
    if on_error is not None:
        job.errored.connect(on_error)
    return job.start(pool)


def job_from_function(stage: str, fn: Callable[[], Any]) -> JobFactory:
    """A factory for plain work that has no steps of its own (one progress event)."""

    def factory(token: CancelToken) -> Generator[Progress, None, Any]:
        yield Progress(stage, 0, 1)
        token.raise_if_cancelled()
        return fn()

    return factory
