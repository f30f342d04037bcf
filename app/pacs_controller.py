"""The PACS in the application: File > Get studies from PACS…, Send to PACS, PACS settings….

Owns the three actions and what they start; the window only adds the actions
to its File menu and forwards :attr:`PacsController.caseRetrieved` to its
worklist. The password is resolved here on the GUI thread (environment, OS
keyring, or asked once and kept in memory until the application closes), so
workers never prompt. Sending takes the open case: its saved mask, reviewed or
approved (core/pacs/send.py says why not otherwise).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFileDialog, QInputDialog, QLineEdit

from core.cases.provenance import prediction_model
from core.errors import ConfigError, HemaRelayError
from core.pacs import credentials
from core.pacs.client import PacsClient
from core.pacs.config import DICOMWEB, PacsConfig
from core.pacs.connect import open_client
from core.pacs.send import send_case

from .errors import user_message
from .pacs_dialog import PacsDialog
from .pacs_settings_dialog import PacsSettingsDialog
from .workers import Job, start_job


class PacsController(QObject):
    caseRetrieved = Signal(object)  # the worklist folder (Path) a new case went into
    jobStarted = Signal(object)  # Job, for the status bar

    def __init__(self, window) -> None:  # the MainWindow (not imported: no import cycle)
        super().__init__(window)
        self.window = window
        self._password = ""  # typed in this session: memory only
        self.dialog: PacsDialog | None = None
        self.job: Job | None = None
        self.get_action = self._action(
            "Get studies from PACS…", "Search the hospital's PACS and retrieve CT series", "pacs_get"
        )
        self.send_action = self._action(
            "Send to PACS",
            "Send the open case's DICOM SEG and volume report to the PACS (reviewed or approved)",
            "pacs_send",
        )
        self.settings_action = self._action(
            "PACS settings…", "The hospital's PACS: server, login, limits", "pacs_settings"
        )
        self.get_action.triggered.connect(self.open_get_dialog)
        self.send_action.triggered.connect(lambda: self.send_open_case())
        self.settings_action.triggered.connect(self.edit_settings)

    def _action(self, text: str, tip: str, name: str) -> QAction:
        a = QAction(text, self.window)
        a.setObjectName(name)
        a.setToolTip(tip)
        a.setStatusTip(tip)
        return a

    def actions(self) -> list[QAction]:
        return [self.get_action, self.send_action, self.settings_action]

    @property
    def config(self) -> PacsConfig:
        return self.window.settings.pacs

    # ----------------------------------------------------------- the client
    def client_factory(self) -> Callable[[], PacsClient] | None:
        """A factory the workers call; None (and the settings offered) when no PACS is set up."""
        try:
            cfg = self.config.require()
        except ConfigError as exc:
            self.window.error_text(str(exc), "PACS")
            return None
        secret = None
        if cfg.protocol == DICOMWEB and cfg.username:
            try:
                secret = credentials.password(cfg, prompt=lambda _q: self._password or None)
            except ConfigError:
                text, ok = QInputDialog.getText(
                    self.window,
                    "PACS password",
                    f"Password for {cfg.username} at {cfg.url}\n(kept until the application closes):",
                    QLineEdit.EchoMode.Password,
                )
                if not ok or not text:
                    return None
                self._password = secret = text
        return lambda: open_client(cfg, prompt=lambda _q: secret)

    # ----------------------------------------------------------- get
    def target_folder(self) -> Path | None:
        """Where retrieved cases go: the open worklist folder, else the site data folder, else asked."""
        w = self.window
        if w.worklist is not None:
            return Path(w.worklist.folder)
        if w.settings.site.data_folder:
            return Path(w.settings.site.data_folder)
        folder = QFileDialog.getExistingDirectory(w, "Worklist folder for cases from the PACS", w.settings.last_folder)
        return Path(folder) if folder else None

    def open_get_dialog(self) -> PacsDialog | None:
        make = self.client_factory()
        if make is None:
            return None
        folder = self.target_folder()
        if folder is None:
            return None
        if self.dialog is not None:
            self.dialog.close()
        self.dialog = PacsDialog(make, lambda: folder, self.window)
        self.dialog.caseRetrieved.connect(lambda result: self._retrieved(result, folder))
        self.dialog.show()
        return self.dialog

    def _retrieved(self, result, folder: Path) -> None:
        self.caseRetrieved.emit(folder)
        self.window.status(result.text())

    # ----------------------------------------------------------- send
    def send_open_case(self, include_pdf: bool | None = None) -> Job | None:
        w = self.window
        s = w.controller.session
        if s is None:
            w.error_text("Open the case to send first.", "Send to PACS")
            return None
        if w.controller.dirty:
            w.error_text(f"Case {s.case_id} has unsaved edits; save them (and review the case) first.", "Send to PACS")
            return None
        make = self.client_factory()
        if make is None:
            return None
        ct = Path(s.paths.ct)
        model = prediction_model(s.paths.prediction) if s.paths.prediction.exists() else ""

        def work(token):
            client = make()
            try:
                return (yield from send_case(client, ct, include_pdf=include_pdf, model_version=model, token=token))
            finally:
                client.close()

        self.job = start_job(
            "Sending to the PACS",
            work,
            on_finished=lambda r: w.status(r.text()),
            on_error=lambda exc: w.error_text(user_message(exc, "Sending to the PACS"), "Send to PACS"),
            parent=self,
        )
        self.jobStarted.emit(self.job)
        return self.job

    # ----------------------------------------------------------- settings
    def edit_settings(self) -> None:
        w = self.window
        dlg = PacsSettingsDialog(self.config, w, self._password)
        if dlg.exec() != PacsSettingsDialog.DialogCode.Accepted:
            return
        try:
            self.apply(dlg.config(), dlg.typed_password())
        except HemaRelayError as exc:
            w.error_text(str(exc), "PACS settings")

    def apply(self, cfg: PacsConfig, password: str = "") -> None:
        """Use and save a PACS set-up (tests; the dialog goes through here)."""
        if password:
            self._password = password
        self.window.prefs.remember(pacs=cfg)
        self.window.status(f"PACS: {cfg.describe()}")
