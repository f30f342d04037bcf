"""The "Training ring" dock: the ring and model-version panels, the Training
menu's actions and the ring's status-bar label, wired to the
:class:`~app.ring_controller.RingController`.

The window only places it and listens: ``message`` (status bar), ``alert``
(a dialog), ``setupChanged`` (save the settings: the dock's controller holds
the one copy of the site set-up, "keep taking my turns" included),
``modelChosen`` (recompute the open case's prediction) and ``trainingEnded``.
Using a version the gates mark (:mod:`core.site.gates`) asks first, through
the ``ask`` it is given (the window passes its case controller's, which tests
replace).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QDockWidget, QLabel, QWidget

from core.errors import HemaRelayError
from core.ring.first_contact import FirstContact
from core.site.gates import confirmation, judge
from core.site.scheduler import TurnEnd, TurnEnded
from core.site.setup import SiteSetup
from core.site.versions import ModelVersion

from .errors import plain_tooltip, user_message
from .panels import ModelsPanel, RingPanel
from .panels.column import panel_column
from .ring_controller import RingController, SyncStatus

Ask = Callable[[str, str, list[str]], str]


class RingDock(QDockWidget):
    message = Signal(str)
    alert = Signal(str, str)  # title, text
    setupChanged = Signal(object)  # SiteSetup, to be saved
    modelChosen = Signal(object, object)  # ModelVersion | None, its weights file | None
    trainingEnded = Signal(object)  # TurnEnded

    def __init__(
        self, setup: SiteSetup, ask: Ask, parent: QWidget | None = None, open_folder: Callable[[], str] = lambda: ""
    ) -> None:
        super().__init__("Training ring", parent)
        self.setObjectName("ringDock")
        self._ask = ask
        self._open_folder = open_folder  # the worklist folder open now: the site dialog's default
        self.panel = RingPanel()
        self.models = ModelsPanel()
        self.ring = RingController(setup, self)
        self.panel.set_keep_taking(setup.keep_taking_turns)
        self.setWidget(panel_column(self.panel, self.models))  # tables scroll
        self.status_label = QLabel("Ring: not set up")  # for the status bar: visible at all times
        self.status_label.setObjectName("ringStatusBar")
        self.status_label.setTextFormat(Qt.TextFormat.PlainText)  # may quote the ring server's text
        self.site_action = QAction("Site and server…", self)
        self.train_action = QAction("Train my turn", self)
        self.cancel_train_action = QAction("Cancel training", self)
        self.check_action = QAction("Check the ring now", self)
        self.show_action = QAction("Show the training ring", self)
        self.train_action.setEnabled(False)
        self.cancel_train_action.setEnabled(False)
        self._connect()

    def menu_actions(self) -> list[QAction]:
        return [self.site_action, self.train_action, self.cancel_train_action, self.check_action, self.show_action]

    def _connect(self) -> None:
        r, rp, mp = self.ring, self.panel, self.models
        self.site_action.triggered.connect(self._site_setup)
        self.train_action.triggered.connect(lambda: r.train())
        self.cancel_train_action.triggered.connect(r.cancel_training)
        self.check_action.triggered.connect(r.check_now)
        self.show_action.triggered.connect(lambda: (self.show(), self.raise_()))
        r.statusChanged.connect(self._status)
        r.viewChanged.connect(lambda view: self._view_changed())
        r.versionsChanged.connect(lambda versions: mp.show_versions(versions, r.chosen()))
        r.newVersion.connect(mp.offer_new)
        r.refusedChanged.connect(mp.show_refused)
        r.firstContact.connect(self._first_contact)
        r.chosenChanged.connect(self._chosen)
        r.trainingStarted.connect(self._training_started)
        r.trainingProgress.connect(rp.training_event)
        r.trainingEnded.connect(self._training_ended)
        r.evaluationProgress.connect(
            lambda ev: mp.show_evaluation(
                f"{ev.stage} {ev.message}" + (f" ({100 * ev.fraction:.0f}%)" if ev.fraction is not None else "")
            )
        )
        r.message.connect(self.message)
        r.message.connect(mp.show_evaluation)
        rp.trainRequested.connect(lambda: r.train())
        rp.cancelRequested.connect(r.cancel_training)
        rp.checkRequested.connect(r.check_now)
        rp.setupRequested.connect(self._site_setup)
        rp.keepTakingChanged.connect(self._keep_taking)
        mp.useRequested.connect(self.use_version)
        mp.evaluateRequested.connect(r.evaluate)

    # ----------------------------------------------------------- the ring's state
    def _status(self, st: SyncStatus) -> None:
        ok = st.state in ("connected", "checking", "not set up")
        self.panel.show_status(st.text(), ok)
        self.status_label.setText(st.text() if len(st.text()) < 90 else st.text()[:87] + "…")
        self.status_label.setToolTip(plain_tooltip(st.text()))
        self.status_label.setStyleSheet("" if ok else "color: #c03020;")
        self._view_changed()

    def _view_changed(self) -> None:
        can = self.ring.can_train()
        if self.ring.view is not None:
            self.panel.show_view(self.ring.view, can)
        else:
            self.panel.set_can_train(False)
        self.train_action.setEnabled(can)

    def _chosen(self, version: ModelVersion | None) -> None:
        self.models.show_versions(self.ring.versions(), version)
        path: Path | None = self.ring.model_path(version) if version is not None else None
        self.modelChosen.emit(version, path)

    def _first_contact(self, contact: FirstContact) -> None:
        """A signed ring whose keys nobody here confirmed: ask, as for an SSH host key."""
        yes = "Trust these keys"
        if (
            self._ask(
                "Confirm the ring's signing keys",
                contact.describe() + "\n\nTrust these keys and settings?",
                [yes, "Cancel"],
            )
            == yes
        ):
            self.ring.confirm_keys()
        else:
            self.message.emit("The ring's signing keys were not confirmed: nothing from it is kept or trained on.")

    # ----------------------------------------------------------- model gates
    def use_version(self, version: int) -> None:
        """Use a model version; one marked by the gates (:mod:`core.site.gates`) is used only
        after a confirmation naming its score and the current model's."""
        try:
            candidate = self.ring.store.get(version) if self.ring.store is not None else None
        except HemaRelayError as exc:
            self.alert.emit("Model versions", str(exc))
            return
        if candidate is None:
            return
        current = self.ring.chosen()
        verdict = judge(candidate, current)
        if not verdict.ok:
            yes = f"Use {candidate.short()} anyway"
            if self._ask("Use this model version?", confirmation(candidate, current, verdict), [yes, "Cancel"]) != yes:
                self.message.emit(f"Model {candidate.short()} was not put in use.")
                return
        self.ring.use_version(version)

    # ----------------------------------------------------------- training
    def _training_started(self) -> None:
        self.panel.training_started()
        self.train_action.setEnabled(False)
        self.cancel_train_action.setEnabled(True)

    def _training_ended(self, end: TurnEnded) -> None:
        self.panel.training_ended(end.message)
        self.panel.set_keep_taking(self.ring.setup.keep_taking_turns)
        self.cancel_train_action.setEnabled(False)
        self._view_changed()
        if end.how is TurnEnd.CANCELLED:
            self.setupChanged.emit(self.ring.setup)  # cancelling switched "keep taking" off
        # a failed automatic turn is shown in the panel and status bar, never as a dialog:
        # left running overnight, dialogs would pile up
        if end.alert:
            self.alert.emit("Training turn", end.message)
        else:
            self.message.emit(end.message)
        self.trainingEnded.emit(end)

    def _keep_taking(self, on: bool) -> None:
        self.ring.set_keep_taking(on)
        self.setupChanged.emit(self.ring.setup)

    # ----------------------------------------------------------- set-up
    def _site_setup(self) -> None:
        from .site_dialog import SiteDialog  # SSH and host-key code: loaded when the dialog opens

        dlg = SiteDialog(self.ring.setup, self._ask, self, open_folder=self._open_folder())
        accepted = dlg.exec() == SiteDialog.DialogCode.Accepted
        dlg.deleteLater()
        if not accepted:
            return
        try:
            setup = dlg.setup()
        except HemaRelayError as exc:
            self.alert.emit("Site and server", user_message(exc, "Site and server"))
            return
        self.apply_site(setup)

    def apply_site(self, setup: SiteSetup) -> None:
        """Use (and have saved) a new site set-up: the dialog's, or a test's."""
        if (setup.data_folder, setup.server, setup.site) != (
            self.ring.setup.data_folder,
            self.ring.setup.server,
            self.ring.setup.site,
        ):  # messages about the previous folder or ring describe a state that is gone
            self.models.show_evaluation("")
            if not self.ring.training:
                self.panel.progress_label.setText("")
        self.panel.set_keep_taking(setup.keep_taking_turns)
        self.ring.set_setup(setup)
        self.setupChanged.emit(setup)

    def shutdown(self) -> None:
        """Before the window closes: stop polling and jobs, no more redraws."""
        self.ring.stop()
        self.panel.shutdown()
