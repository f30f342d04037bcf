"""The open site folder: its worklist, each case's state and status changes.

Holds the :class:`~core.cases.worklist.Worklist` of the folder shown in the
worklist panel, measures its volumes on a worker, opens a row's case through
the case controller and records status changes (the rules are core's:
:meth:`core.cases.worklist.Worklist.set_status`). Every view reads a case's state
from :func:`core.cases.case_state.case_state` through :meth:`case_state`/:meth:`state_of`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from PySide6.QtCore import QObject, Signal

from core.cases.case_state import CaseState, case_state
from core.cases.worklist import CaseStatus, CaseVolume, UnopenedCasesError, Worklist, measure_volumes, scan_folder
from core.errors import HemaRelayError
from core.progress import Progress

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
        controller.opened.connect(lambda _s: self._seen(self.controller.label, ""))
        controller.openFailed.connect(lambda label, why: self._seen(label, why or "unreadable"))

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

    def restore(self, last_folder: str, open_case: str) -> None:
        """The last site folder again; and the case that was open when the program stopped
        (a crash), opened again so that its autosaved edits are offered."""
        if last_folder and Path(last_folder).is_dir():
            self.open_folder(last_folder)
        crashed = Path(open_case) if open_case else None
        if crashed is None or not crashed.exists():
            return
        self.message.emit(f"The program stopped while case {crashed.name} was open; it is opened again.")
        case = next((c for c in self.worklist.cases if c.paths.ct == crashed), None) if self.worklist else None
        if case is not None:
            self.open_label(case.label)
        else:
            self.controller.open_case(crashed)

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

    def _seen(self, label: str | None, unreadable: str) -> None:
        """A worklist case was opened (or could not be read): recorded in its status file."""
        if self.worklist is None or label is None:
            return
        try:
            if unreadable:
                self.worklist.mark_unreadable(label, unreadable)
            else:
                self.worklist.mark_opened(label, self._user())
        except HemaRelayError as exc:  # a read-only folder: the case is still shown
            self.message.emit(str(exc))
            return
        self.panel.model.case_changed(label)

    # ----------------------------------------------------------- status
    def set_status(self, label: str, status: CaseStatus) -> None:
        self.set_statuses([label], status)

    def set_statuses(self, labels: list[str], status: CaseStatus) -> None:
        """Set ``status`` on every case of ``labels``; marking cases reviewed or approved that
        were never opened asks once, naming them (core.cases.worklist.UnopenedCasesError)."""
        if self.worklist is None or not labels:
            return
        reviewing = status in (CaseStatus.REVIEWED, CaseStatus.APPROVED)
        if reviewing and self.controller.label in labels and self.controller.dirty:
            self.failed.emit(
                f"Case {self.controller.label} has unsaved edits; save them before marking it '{status.value}'.",
                "Case status",
            )
            return
        unopened = [  # (a damaged status file or an unreadable scan refuses by itself, below)
            c.label
            for c in self.worklist.cases
            if c.label in labels and not c.opened and not c.unreadable and c.status is not None
        ]
        confirmed = False
        if reviewing and unopened:
            yes = f"Mark them '{status.value}'"
            question = str(UnopenedCasesError(unopened, status)) + (
                "\n\nOpen each case to look at it first (its status can be set from the worklist then)."
            )
            if self.controller.ask("Cases not opened", question, [yes, "Cancel"]) != yes:
                self.message.emit(f"Status not changed: {', '.join(unopened)} not opened.")
                return
            confirmed = True
        user = self._user()
        done = []
        for label in labels:
            try:
                self.worklist.set_status(label, status, user, unopened_ok=confirmed)
            except HemaRelayError as exc:
                self.failed.emit(str(exc), "Case status")
                continue
            done.append(label)
            self.panel.model.case_changed(label)
            self.caseChanged.emit(label)
        if done:
            self.message.emit(f"Case {', '.join(done)}: {status.value} (by {user}).")

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
