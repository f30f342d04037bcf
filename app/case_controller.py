"""The open case's life: open, restore, autosave, save, close.

Reading, saving and autosaving run on worker threads through
:mod:`app.workers`; this object keeps the GUI side consistent (which session
is current, whether edits are unsaved) and asks the user when a choice is
needed through ``ask`` (a dialog in the window, a stub in tests).

Autosave: after each stroke (or undo/redo) a timer of a second or two starts;
when it fires, a copy of the mask is written to the case's recovery file on a
worker. Saving the mask removes the recovery file; closing without saving
asks first. After a crash the recovery file is found on the next opening.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from PySide6.QtCore import QObject, QTimer, Signal

from core.annotation import EditSession, MaskChange, open_case
from core.annotation.session import MaskSnapshot

from .errors import is_cancel, user_message
from .workers import Job, job_from_function, start_job

Ask = Callable[[str, str, list[str]], str]  # (title, question, buttons) -> button chosen
ACCEPT_STEPS = ("accept prediction", "accept prediction part")  # core.annotation.editor's step names
Then = Callable[[bool], None]


class CaseController(QObject):
    opened = Signal(object)  # EditSession
    closed = Signal()
    maskChanged = Signal(object)  # core.annotation.MaskChange
    dirtyChanged = Signal(bool)
    saved = Signal(object)  # Path of the mask written
    autosaved = Signal(object)  # Path of the recovery file written
    message = Signal(str)  # for the status bar
    failed = Signal(str)  # an error for a dialog
    jobStarted = Signal(object)  # Job, for the progress display
    openFailed = Signal(object, str)  # worklist label (None for a file), why the case could not be read

    def __init__(self, ask: Ask, autosave_delay_s: float = 1.5, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.ask = ask
        self.user = ""  # the reader's name: holds the case's lock, recorded as who corrected a mask
        self.session: EditSession | None = None
        self.label: str | None = None  # worklist label of the open case
        self._unsubscribe: Callable[[], None] | None = None
        self._dirty = False
        self._open_job: Job | None = None
        self._save_job: Job | None = None
        self._autosave_job: Job | None = None
        self._autosaved_revision = -1
        self._autosave_warned = False
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self.set_autosave_delay(autosave_delay_s)
        self._timer.timeout.connect(self._autosave)

    def set_autosave_delay(self, seconds: float) -> None:
        self._timer.setInterval(int(seconds * 1000))

    @property
    def dirty(self) -> bool:
        return self.session is not None and self.session.model.dirty

    @property
    def busy(self) -> bool:
        return any(j is not None and j.running for j in (self._open_job, self._save_job))

    # ----------------------------------------------------------- opening
    def open_case(self, ct_path: str | Path, label: str | None = None) -> None:
        """Open a CT (file or DICOM folder); asks about unsaved edits of the open case first.

        The open case stays open until the new one has been read: a file that cannot be
        opened leaves the user in the case they were in, as it was (edits the user chose to
        discard are dropped only once the new case is open)."""

        def go(ok: bool) -> None:
            if not ok:
                return
            if self._open_job is not None and self._open_job.running:
                self._open_job.cancel()
            job = start_job(
                "Opening case",
                lambda token, user=self.user: open_case(ct_path, token, user=user or None),
                on_error=lambda exc: self._open_failed(exc, label),
                parent=self,
            )
            job.finished.connect(lambda s, j=job: self._opened(s, label, j))
            self._open_job = job
            self.jobStarted.emit(job)

        self._settle_unsaved(go)

    def _settle_unsaved(self, then: Then) -> None:
        """Before another case replaces this one: save, or agree to discard, its unsaved edits."""
        s = self.session
        if s is not None and s.model.in_stroke:
            s.model.end_stroke()
        if s is None or not s.model.dirty:
            then(True)
            return
        choice = self.ask(
            "Unsaved edits", f"Case {s.case_id} has unsaved edits. Save them?", ["Save", "Discard", "Cancel"]
        )
        if choice == "Save":
            self.save(then)
        else:
            then(choice == "Discard")

    def _opened(self, session: EditSession, label: str | None, job: Job) -> None:
        if job is not self._open_job:
            return  # a later open replaced this one
        if self.session is not None:
            old = self.session
            self._drop(discard=True)  # saved, or its edits discarded by the user's choice
            if old.model.dirty:
                self.message.emit(f"Discarded the unsaved edits of case {old.case_id}.")
        self.session, self.label = session, label
        self._autosaved_revision = session.model.revision
        self._autosave_warned = False
        self._unsubscribe = session.model.subscribe(self._on_change)
        for note in session.notes:
            self.message.emit(note)
        if session.recovery is not None:
            choice = self.ask(
                "Unsaved edits found",
                f"Case {session.case_id} has edits autosaved on {session.recovery.describe()} "
                "that were never saved (the program was closed without saving or stopped). "
                "Restore them?",
                ["Restore", "Discard"],
            )
            try:
                if choice == "Restore":
                    n = session.restore_recovery()
                    self.message.emit(f"Restored the autosaved edits ({n} voxels differ from the saved mask).")
                else:
                    session.discard_recovery()
                    self.message.emit("Discarded the autosaved edits.")
            except Exception as exc:  # noqa: BLE001 - a damaged recovery file must not block the case
                self.failed.emit(user_message(exc, "Restoring the autosaved edits"))
        self._set_dirty(session.model.dirty)
        self.opened.emit(session)
        if session.model.dirty:
            self._timer.start()  # the restored edits are unsaved: keep them safe

    # ----------------------------------------------------------- closing
    def close_case(self, then: Then | None = None) -> None:
        """Close the open case, asking to save unsaved edits; ``then(closed)``."""
        then = then or (lambda ok: None)
        s = self.session
        if s is None:
            then(True)
            return
        if s.model.in_stroke:
            s.model.end_stroke()
        if not s.model.dirty:
            self._drop(discard=True)
            then(True)
            return
        choice = self.ask(
            "Unsaved edits", f"Case {s.case_id} has unsaved edits. Save them?", ["Save", "Discard", "Cancel"]
        )
        if choice == "Save":
            self.save(lambda ok: (self._drop(discard=False), then(True)) if ok else then(False))
        elif choice == "Discard":
            self._drop(discard=True)
            self.message.emit(f"Discarded the unsaved edits of case {s.case_id}.")
            then(True)
        else:
            then(False)

    def _drop(self, discard: bool) -> None:
        s = self.session
        if s is None:
            return
        self._timer.stop()
        if self._unsubscribe:
            self._unsubscribe()
        if discard:
            try:
                s.discard_recovery()
            except Exception as exc:  # noqa: BLE001
                self.failed.emit(user_message(exc, "Removing the recovery file"))
        s.close()  # the case's lock: another window may edit it now
        self.session, self.label, self._unsubscribe = None, None, None
        self._set_dirty(False)
        self.closed.emit()

    # ----------------------------------------------------------- changes
    def _on_change(self, change: MaskChange) -> None:
        s = self.session
        if s is not None and change.reason == "stroke" and s.model.undo_label in ACCEPT_STEPS:
            s.note_accepted()  # the mask now starts from the model's prediction (core.cases.mask_origin)
        self.maskChanged.emit(change)
        if change.reason != "edit":  # a stroke ended, or undo/redo
            self._set_dirty(self.dirty)
            if not self._timer.isActive():
                self._timer.start()

    def _set_dirty(self, dirty: bool) -> None:
        if dirty != self._dirty:
            self._dirty = dirty
            self.dirtyChanged.emit(dirty)

    # ----------------------------------------------------------- saving
    def save(self, then: Then | None = None) -> None:
        s = self.session
        if s is None:
            if then:
                then(False)
            return
        if s.model.in_stroke:
            s.model.end_stroke()
        snap = s.snapshot()

        def done(path: Path) -> None:
            try:
                s.saved(snap)
            except Exception as exc:  # noqa: BLE001 - the mask is saved; only cleanup failed
                self.failed.emit(user_message(exc, "Saving"))
            if s is self.session:
                self._set_dirty(s.model.dirty)
            self.message.emit(f"Saved {path.name} ({s.volume_ml():.2f} mL).")
            self.saved.emit(path)
            if then:
                then(True)

        def failed(exc: BaseException) -> None:
            self._report(exc, "Saving the mask")
            if then:
                then(False)

        self._save_job = start_job(
            "Saving mask", lambda token: s.save(snap, token), on_finished=done, on_error=failed, parent=self
        )
        self.jobStarted.emit(self._save_job)

    # ----------------------------------------------------------- autosave
    def _autosave(self) -> None:
        s = self.session
        if s is None:
            return
        busy = any(j is not None and j.running for j in (self._autosave_job, self._save_job))
        if s.model.in_stroke or busy:
            self._timer.start()  # try again once the stroke or the write is over
            return
        if not s.model.dirty:
            self._forget_recovery(s)
            return
        if s.read_only:  # another window edits this case: its recovery file is not ours
            return
        if s.model.revision == self._autosaved_revision:
            return
        snap = s.snapshot()
        self._autosave_job = start_job(
            "Autosave",
            job_from_function("Autosave", lambda: s.write_recovery(snap)),
            on_finished=lambda path: self._autosave_done(s, snap, path),
            on_error=self._autosave_failed,
            parent=self,
        )

    def _autosave_done(self, s: EditSession, snap: MaskSnapshot, path: Path) -> None:
        self._autosaved_revision = snap.revision
        if s is not self.session or not s.model.dirty:
            self._forget_recovery(s)  # saved or closed meanwhile: the file is stale
            return
        self.autosaved.emit(path)
        if s.model.revision != snap.revision and not self._timer.isActive():
            self._timer.start()

    def _autosave_failed(self, exc: BaseException) -> None:
        if not self._autosave_warned:  # once per case, not after every stroke
            self._autosave_warned = True
            self.message.emit("Autosave failed: " + user_message(exc, "Autosave"))

    def _forget_recovery(self, s: EditSession) -> None:
        try:
            s.discard_recovery()
        except Exception as exc:  # noqa: BLE001
            self.message.emit(user_message(exc, "Removing the recovery file"))

    # ----------------------------------------------------------- errors
    def _open_failed(self, exc: BaseException, label: str | None) -> None:
        self._report(exc, "Opening the case")
        if not is_cancel(exc):
            self.openFailed.emit(label, user_message(exc, "Opening the case"))

    def _report(self, exc: BaseException, doing: str) -> None:
        if is_cancel(exc):
            self.message.emit(f"{doing}: cancelled.")
        else:
            self.failed.emit(user_message(exc, doing))
