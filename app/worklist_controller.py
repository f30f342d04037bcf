"""The open site folder: its worklist, each case's state and status changes.

Holds the :class:`~core.worklist.Worklist` of the folder shown in the
worklist panel, measures its volumes on a worker, opens a row's case through
the case controller and records status changes (the rules are core's:
:meth:`core.worklist.Worklist.set_status`). Every view reads a case's state
from :func:`core.case_state.case_state` through :meth:`case_state`/:meth:`state_of`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from PySide6.QtCore import QObject, Signal

from core.case_state import CaseState, case_state
from core.errors import HemaRelayError
from core.progress import Progress
from core.worklist import CaseStatus, CaseVolume, Worklist, measure_volumes, scan_folder

from .case_controller import CaseController
from .errors import user_message
from .panels import WorklistPanel
from .workers import start_job


class WorklistController(QObject):
    message = Signal(str)  # for the status bar
    failed = Signal(str, str)  # text, dialog title
    folderOpened = Signal(object)  # Worklist
    caseChanged = Signal(str)  # a case's status or files changed: its label

    def __init__(self, panel: WorklistPanel, controller: CaseController, user: Callable[[], str], parent=None) -> None:
        super().__init__(parent)
        self.panel = panel
        self.controller = controller
        self._user = user
        self.worklist: Worklist | None = None
        panel.model.state_of = self.state_of

    # ----------------------------------------------------------- the folder
    def open_folder(self, folder: str | Path) -> bool:
        try:
            wl = scan_folder(folder)
        except HemaRelayError as exc:
            self.failed.emit(str(exc), "Open site folder")
            return False
        self.worklist = wl
        self.panel.set_worklist(wl)
        self.message.emit(f"{len(wl.cases)} cases in {wl.folder}")
        for problem in wl.problems.values():
            self.message.emit(problem)
        self._measure_volumes(wl)
        self.folderOpened.emit(wl)
        return True

    def _measure_volumes(self, wl: Worklist) -> None:
        def on_event(ev: Progress) -> None:
            if isinstance(ev, CaseVolume) and self.worklist is wl:
                self.panel.model.set_volume(ev)

        start_job(
            "Measuring volumes",
            lambda token: measure_volumes(list(wl.cases), token),
            on_progress=on_event,
            on_error=lambda exc: self.message.emit(user_message(exc)),
            parent=self,
        )

    def open_label(self, label: str) -> None:
        if self.worklist is None:
            return
        case = self.worklist.find(label)
        self.panel.select(label)
        self.controller.open_case(case.paths.ct, label)

    def refresh_open_case(self) -> None:
        """Re-read the open case's files (a new prediction, a saved mask) into its row."""
        label = self.controller.label
        if self.worklist is None or label is None:
            return
        try:
            self.worklist.refresh(label)
            self.panel.model.case_changed(label)
        except HemaRelayError:
            pass

    # ----------------------------------------------------------- status
    def set_status(self, label: str, status: CaseStatus) -> None:
        if self.worklist is None:
            return
        if (
            label == self.controller.label
            and self.controller.dirty
            and status in (CaseStatus.REVIEWED, CaseStatus.APPROVED)
        ):
            self.failed.emit(
                f"Case {label} has unsaved edits; save them before marking it '{status.value}'.", "Case status"
            )
            return
        user = self._user()
        try:
            self.worklist.set_status(label, status, user)
        except HemaRelayError as exc:
            self.failed.emit(str(exc), "Case status")
            return
        self.panel.model.case_changed(label)
        self.caseChanged.emit(label)
        self.message.emit(f"Case {label}: {status.value} (by {user}).")

    def mask_saved(self, volume_ml: float | None) -> None:
        """After the open case's mask was saved: its status and its row."""
        label = self.controller.label
        if self.worklist is None or label is None:
            return
        try:
            _, text = self.worklist.mask_saved(label, self._user())
        except HemaRelayError as exc:
            text = str(exc)
        if volume_ml is not None:
            self.panel.model.set_volume(CaseVolume("saved", label=label, volume_ml=volume_ml, source="manual"))
        self.panel.model.case_changed(label)
        self.caseChanged.emit(label)
        if text:
            self.message.emit(text)

    # ----------------------------------------------------------- one state per case
    def state_of(self, case) -> CaseState:
        """A worklist row's state; the open case's includes its session."""
        s = self.controller.session if case.label == self.controller.label else None
        return case_state(case.label, case, s)

    def case_state(self) -> CaseState | None:
        """The open case's state, as the worklist, status control, report panel and title show it."""
        s = self.controller.session
        if s is None:
            return None
        label = self.controller.label or s.case_id
        case = None
        if self.worklist is not None and self.controller.label is not None:
            case = next((c for c in self.worklist.cases if c.label == label), None)
        return case_state(label, case, s)
