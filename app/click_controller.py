"""The "Click bleed" tool: clicks -> a preview of the new mask -> Enter or Esc.

A click inside a bleed (any of the three views) adds a positive click,
Shift+click or a right-click a negative one. Every click of the session goes
to :meth:`core.annotation.click_segment.ClickContext.segment` on a worker (the
same function the reviewer benchmark measures), which predicts only the slices
the clicks reach; the result is shown as a preview (yellow: would be added,
purple: would be removed) over the mask the session started from, and each
click is marked where it was made (a ringed + or -, :mod:`app.viewer.marks`) so
the reviewer sees what the preview answers. Enter
accepts it as one undo step, Esc drops it with its clicks. Nothing slow runs
on the GUI thread: preparing a case for clicks (brain extraction, the model's
automatic probabilities; a few seconds) is a worker job started when the tool
is first used on the case, and clicks made meanwhile wait for it.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from PySide6.QtCore import QObject, QThreadPool, Signal

from core.annotation import EditSession
from core.annotation.click_segment import Click, ClickContext, ClickResult, prepare_clicks
from core.errors import CancelledError

from .errors import user_message
from .workers import Job, start_job

ModelPath = Callable[[], "object | None"]  # -> a path-like to the weights in use, or None
_POOL: QThreadPool | None = None


def click_pool() -> QThreadPool:
    """The click tool's own worker thread: a click never waits behind a whole-case
    prediction or a training job on the shared pool (its preview must come in
    well under a second), and one thread keeps the case's click state with one
    job at a time."""
    global _POOL
    if _POOL is None:
        _POOL = QThreadPool()
        _POOL.setMaxThreadCount(1)
    return _POOL


@dataclass
class ClickSession:
    start: np.ndarray  # the mask when the first click was made (stack layout uint8)
    state_id: int  # the mask model's state then: an edit in between ends the session
    clicks: list[Click] = field(default_factory=list)
    result: ClickResult | None = None


class ClickController(QObject):
    message = Signal(str)
    previewChanged = Signal(object)  # uint8 stack volume (1 add, 2 remove) or None
    clicksChanged = Signal(object)  # list[Click] of the session, [] when none
    busyChanged = Signal(bool)

    def __init__(self, model_path: ModelPath, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.model_path = model_path
        self.session: EditSession | None = None
        self.context: ClickContext | None = None
        # the case (weakly) and the model the context was built for: the window detaches and
        # re-attaches the open case when its prediction is updated, and the prepared state
        # (brain, the model's first look) stays good for it
        self._context_for: tuple[weakref.ref, str] | None = None
        self.clicks: ClickSession | None = None
        self._prepare: Job | None = None
        self._segment: Job | None = None
        self._dirty = False  # clicks changed while a segmentation job ran

    # ----------------------------------------------------------- case
    def attach(self, session: EditSession) -> None:
        """The open case; attaching the same case again (its prediction was updated)
        keeps the clicks in progress."""
        if session is self.session:
            return
        self.detach()
        self.session = session

    def detach(self) -> None:
        """No case open. A preparation in progress finishes (its result is kept for
        that case, by a weak reference, should it come back)."""
        self.discard()
        self.session = None

    @property
    def active(self) -> bool:
        return self.clicks is not None and bool(self.clicks.clicks)

    # ----------------------------------------------------------- clicks
    def click(self, voxel: tuple[int, int, int], positive: bool) -> None:
        s = self.session
        if s is None:
            return
        if s.read_only:
            self.message.emit(s.read_only_reason or "This case is open read-only.")
            return
        if self.clicks is not None and self.clicks.state_id != s.model.state_id:
            self.discard()  # the mask changed under the session (undo, another tool): start anew
        if self.clicks is None:
            self.clicks = ClickSession(s.model.snapshot(), s.model.state_id)
        self.clicks.clicks.append(Click(*voxel, positive=positive))
        self._clicks_changed()
        self._run()

    def undo_click(self) -> bool:
        """Drop the last click of the session (Backspace); False when there is none."""
        if not self.active:
            return False
        assert self.clicks is not None
        self.clicks.clicks.pop()
        if not self.clicks.clicks:
            self.discard()
        else:
            self._clicks_changed()
            self._run()
        return True

    def accept(self) -> bool:
        """Apply the previewed mask as one undo step; False when nothing waits."""
        s, c = self.session, self.clicks
        if s is None or c is None or c.result is None or self._busy:
            return False
        new = c.result.mask.astype(bool)
        start = c.start.astype(bool)
        s.model.begin_stroke("click bleed")
        added = s.model.set_box(_full(new), new & ~start, 1)
        removed = s.model.set_box(_full(new), start & ~new, 0)
        s.model.end_stroke()
        if self._context_for is not None and added:  # the model that drew these: provenance follows the voxels
            s.note_model_drawn(new & ~start, Path(self._context_for[1]))
        ml = s.ct.voxel_volume_ml
        self.message.emit(
            f"Click bleed: {added} voxels added ({added * ml:.2f} mL), {removed} removed "
            f"({removed * ml:.2f} mL); one undo step."
        )
        self._end()
        return True

    def discard(self) -> bool:
        """Drop the clicks and the preview (a segmentation still running finishes on
        its worker, and its result is ignored: the case's click state is not shared
        between two jobs)."""
        if self.clicks is None:
            return False
        self._end()
        return True

    def _end(self) -> None:
        self.clicks = None
        self._dirty = False
        self.previewChanged.emit(None)
        self.clicksChanged.emit([])
        self.busyChanged.emit(False)

    def _clicks_changed(self) -> None:
        c = self.clicks
        self.clicksChanged.emit([] if c is None else list(c.clicks))

    @property
    def _busy(self) -> bool:
        return self._segment is not None or self._prepare is not None

    # ----------------------------------------------------------- work
    def _run(self) -> None:
        if self.clicks is None or self.session is None:
            return
        if not self._ensure_context():
            return
        if self._segment is not None:
            self._dirty = True  # the running job's result is shown, then this is run
            return
        ctx, c = self.context, self.clicks
        assert ctx is not None
        start, clicks = c.start, list(c.clicks)
        self.busyChanged.emit(True)
        self._segment = start_job(
            "Click bleed",
            lambda token: _segment_job(ctx, start, clicks),
            on_finished=lambda result, c=c: self._segmented(c, result),
            on_error=self._segment_failed,
            parent=self,
            pool=click_pool(),
        )

    def _segmented(self, c: ClickSession, result: ClickResult) -> None:
        self._segment = None
        if self._dirty:  # clicks came meanwhile: run again with all of them
            self._dirty = False
            self._run()
            return
        if c is not self.clicks:
            return  # dropped or replaced meanwhile
        c.result = result
        start = c.start.astype(bool)
        new = result.mask.astype(bool)
        preview = (new & ~start).astype(np.uint8)
        preview[start & ~new] = 2
        self.previewChanged.emit(preview)
        self.busyChanged.emit(False)
        pos = sum(1 for k in c.clicks if k.positive)
        neg = len(c.clicks) - pos
        ml = self.session.ct.voxel_volume_ml if self.session is not None else 0.0
        text = result.message or (
            f"Click bleed ({pos} inside, {neg} outside): +{result.added * ml:.2f} mL, "
            f"-{result.removed * ml:.2f} mL in {1000 * result.seconds:.0f} ms. "
            "Enter accepts (one undo step), Esc drops, Backspace takes back the last click."
        )
        self.message.emit(text)

    def _ensure_context(self) -> bool:
        """True when the case is ready for clicks; else starts preparing it."""
        s = self.session
        path = self.model_path()
        if s is None:
            return False
        if path is None:
            self.message.emit("Click bleed needs a model: choose one under Training, or reinstall the default model.")
            self.discard()
            return False
        if self.context is not None and self._context_for is not None:
            case, model = self._context_for
            if case() is s and model == str(path):
                return True
        if self._prepare is not None:
            return False
        self.context = None
        self.busyChanged.emit(True)
        self.message.emit("Click bleed: preparing this case (brain, the model's first look; a few seconds)…")
        hu, stack, brain = s.hu, s.stack, s.brain
        key = (weakref.ref(s), str(path))
        self._prepare = start_job(
            "Preparing the click tool",
            lambda token: _prepare_job(str(path), hu, stack, brain, token),
            on_finished=lambda ctx, key=key: self._prepared(ctx, key),
            on_error=self._prepare_failed,
            parent=self,
            pool=click_pool(),
        )
        return False

    def _prepared(self, ctx: ClickContext, key: tuple[weakref.ref, str]) -> None:
        self._prepare = None
        self.context, self._context_for = ctx, key
        if self.clicks is not None:
            self._run()  # prepares again first if the open case is another one by now
        else:
            self.busyChanged.emit(False)

    def _prepare_failed(self, exc: BaseException) -> None:
        self._prepare = None
        self._failed(exc)

    def _segment_failed(self, exc: BaseException) -> None:
        self._segment = None
        self._dirty = False
        self._failed(exc)

    def _failed(self, exc: BaseException) -> None:
        self.busyChanged.emit(False)
        if isinstance(exc, CancelledError):
            return
        self.message.emit(user_message(exc, "Click bleed"))
        self._end()


def _full(mask: np.ndarray) -> tuple[slice, slice, slice]:
    return tuple(slice(0, n) for n in mask.shape)  # type: ignore[return-value]


def _prepare_job(path: str, hu, stack, brain, token):
    from core.evaluation.inference import Segmenter

    segmenter = Segmenter.from_file(path)
    return (yield from prepare_clicks(hu, stack, segmenter, token, brain=brain))


def _segment_job(ctx: ClickContext, start: np.ndarray, clicks: list[Click]):
    from core.progress import Progress

    yield Progress("Click bleed", 0, 1, f"{len(clicks)} click(s)")
    return ctx.segment(start, clicks)
