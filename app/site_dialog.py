"""Site and server set-up: site name, data folder, ring server, SSH key, preset.

"Test connection" runs on a worker: it first fetches the server's SSH host
key; a key seen for the first time is shown (type and SHA256 fingerprint) and
recorded in known_hosts only when the user confirms it; a changed key is
refused. Then it connects, reads the ring and checks this site can write
there, and says so in one paragraph. A signed ring met for the first time shows
its members' signing-key fingerprints and the ring's own, and is pinned only
when the user confirms them (core/ring/first_contact.py). The data folder defaults to the site
folder open in the worklist and is checked here (it exists and holds cases),
not only when a training turn starts. Saved to the user's settings file
(never the repository) by the main window.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from core.errors import HemaRelayError
from core.resources import resource_path
from core.site.connection import ConnectionReport, check_connection, confirm_keys
from core.site.hostkey import HostKeyProbe, probe_host_key, trust_host_key
from core.site.setup import SiteSetup, check_data_folder

from .browse_row import with_browse
from .errors import user_message
from .wheel_guard import guard_wheel_below
from .workers import Job, job_from_function, start_job

Ask = Callable[[str, str, list[str]], str]


def _presets() -> list[str]:
    folder = resource_path("presets")
    return sorted(p.stem for p in folder.glob("*.toml")) if folder.is_dir() else ["default"]


class SiteDialog(QDialog):
    def __init__(self, setup: SiteSetup, ask: Ask, parent: QWidget | None = None, open_folder: str = "") -> None:
        super().__init__(parent)
        self.setObjectName("siteDialog")
        self.setWindowTitle("Site and ring server")
        self.ask = ask
        self._base = setup
        self.job: Job | None = None
        self.site = QLineEdit(setup.site)
        self.site.setPlaceholderText("this hospital's name in the ring, e.g. site-a")
        self.data = QLineEdit(setup.data_folder or open_folder)  # default: the open site folder
        self.data_check = QLabel("")
        self.data_check.setObjectName("dataFolderCheck")
        self.data_check.setWordWrap(True)
        self.data.editingFinished.connect(self._check_data)
        self.server = QLineEdit(setup.server)
        self.server.setPlaceholderText("empty: this computer only (no server)")
        self.server.setToolTip("sftp://user@host:port/path/to/ring, or a shared folder")
        self.key = QLineEdit(setup.key_file)
        self.key.setPlaceholderText("default: ~/.ssh keys or ssh-agent")
        self.known = QLineEdit(setup.known_hosts)
        self.known.setPlaceholderText("default: ~/.ssh/known_hosts")
        self.preset = QComboBox()
        self.preset.addItems(_presets())
        self.preset.setCurrentText(setup.preset)
        self.start_from = QComboBox()
        self.start_from.setObjectName("startFrom")
        self.start_from.addItem("the default model shipped with the program", "default")
        self.start_from.addItem("scratch (weights drawn at random, as in the paper)", "scratch")
        self.start_from.setCurrentIndex(max(self.start_from.findData(setup.start_from), 0))
        self.start_from.setToolTip(
            "What this computer's own ring (no server) trains its first turn from. "
            "A server ring's start is chosen by its coordinator (hemarelay ring init --start-from)."
        )
        self.overrides = QLineEdit(", ".join(setup.overrides))
        self.overrides.setPlaceholderText("optional key=value training settings, comma separated")
        self.poll = QDoubleSpinBox()
        self.poll.setRange(2, 3600)
        self.poll.setDecimals(0)
        self.poll.setSuffix(" s")
        self.poll.setValue(setup.poll_s)
        self.keep = QCheckBox("Keep taking this site's turns automatically")
        self.keep.setChecked(setup.keep_taking_turns)
        # The site decides: caps on what the ring server may ask of this site.
        self.max_epochs = QSpinBox()
        self.max_epochs.setObjectName("maxEpochsPerTurn")
        self.max_epochs.setRange(1, 1000)
        self.max_epochs.setValue(setup.max_epochs_per_turn)
        self.max_auto = QSpinBox()
        self.max_auto.setObjectName("maxAutoTurns")
        self.max_auto.setRange(0, 60)
        self.max_auto.setSuffix(" per hour")
        self.max_auto.setValue(setup.max_auto_turns_per_hour)
        self.share_optimizer = QCheckBox("Also send the optimizer's moments with the weights (off: they stay here)")
        self.share_optimizer.setObjectName("shareOptimizer")
        self.share_optimizer.setToolTip(
            "Adam's moments are running averages of this site's gradients; the next site trains "
            "well without them (it starts a fresh optimizer). Send them only if the ring agreed to."
        )
        self.share_optimizer.setChecked(setup.share_optimizer)
        self.signing = QLineEdit("")
        self.signing.setObjectName("signingKey")
        self.signing.setReadOnly(True)
        self.signing.setPlaceholderText("this site's public key for signed turns (give it to the ring's coordinator)")
        show_key = QPushButton("Show")
        show_key.clicked.connect(self._show_signing_key)
        key_row = QWidget()
        key_lay = QHBoxLayout(key_row)
        key_lay.setContentsMargins(0, 0, 0, 0)
        key_lay.addWidget(self.signing, 1)
        key_lay.addWidget(show_key)
        form = QFormLayout()
        form.addRow("Site name", self.site)
        form.addRow(
            "Site data folder",
            with_browse(
                self.data, lambda: QFileDialog.getExistingDirectory(self, "Site data folder", self.data.text())
            ),
        )
        form.addRow("", self.data_check)
        form.addRow("Ring server", self.server)
        form.addRow(
            "SSH key file",
            with_browse(self.key, lambda: QFileDialog.getOpenFileName(self, "SSH private key", self.key.text())[0]),
        )
        form.addRow("Known hosts file", self.known)
        form.addRow("Training preset", self.preset)
        form.addRow("Without a server, start from", self.start_from)
        form.addRow("Training overrides", self.overrides)
        form.addRow("Check the server every", self.poll)
        form.addRow("", self.keep)
        form.addRow("Epochs per turn at most", self.max_epochs)
        form.addRow("Automatic turns at most", self.max_auto)
        form.addRow("", self.share_optimizer)
        form.addRow("Turn-signing key", key_row)
        self.test_button = QPushButton("Test connection")
        self.test_button.setObjectName("testConnection")
        self.result = QLabel("")
        self.result.setObjectName("connectionResult")
        self.result.setWordWrap(True)
        self.result.setTextFormat(Qt.TextFormat.PlainText)  # quotes what the server holds
        self.result.setMinimumWidth(460)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        row = QHBoxLayout()
        row.addWidget(self.test_button)
        row.addStretch(1)
        lay.addLayout(row)
        lay.addWidget(self.result)
        lay.addWidget(buttons)
        guard_wheel_below(self)  # the wheel scrolls; it never changes a value on the way
        self.test_button.clicked.connect(self.test_connection)
        self.last_report: ConnectionReport | None = None
        if self.data.text():
            self._check_data()

    def _check_data(self) -> bool:
        try:
            text, ok = check_data_folder(self.data.text().strip()), True
        except HemaRelayError as exc:
            text, ok = str(exc), False
        self.data_check.setText(text)
        self.data_check.setStyleSheet("color: #1a7f37;" if ok else "color: #c03020;")
        return ok

    def setup(self) -> SiteSetup:
        """The edited set-up, validated (ConfigError says what is wrong)."""
        check_data_folder(self.data.text().strip())  # InputError/ConfigError: said in the dialog
        overrides = tuple(x.strip() for x in self.overrides.text().split(",") if x.strip())
        return replace(
            self._base,
            site=self.site.text().strip(),
            data_folder=self.data.text().strip(),
            server=self.server.text().strip(),
            key_file=self.key.text().strip(),
            known_hosts=self.known.text().strip(),
            preset=self.preset.currentText(),
            start_from=self.start_from.currentData(),
            overrides=overrides,
            poll_s=self.poll.value(),
            keep_taking_turns=self.keep.isChecked(),
            max_epochs_per_turn=self.max_epochs.value(),
            max_auto_turns_per_hour=self.max_auto.value(),
            share_optimizer=self.share_optimizer.isChecked(),
        ).validated()

    def _show_signing_key(self) -> None:
        """This site's public signing key (created on first use) as a signers-file line."""
        from core.site.setup import site_signer

        try:
            setup = self.setup()
            self.signing.setText(f"{setup.site} {site_signer(setup).public}")
        except HemaRelayError as exc:
            self._show(False, str(exc))

    def _accept(self) -> None:
        try:
            self.setup()
        except HemaRelayError as exc:
            self._check_data()
            self._show(False, str(exc))
            return
        self.accept()

    # ----------------------------------------------------------- test connection
    def _show(self, ok: bool, text: str) -> None:
        self.result.setText(text)
        self.result.setStyleSheet("color: #1a7f37;" if ok else "color: #c03020;")

    def test_connection(self) -> None:
        try:
            setup = self.setup()
        except HemaRelayError as exc:
            self._show(False, str(exc))
            return
        self.test_button.setEnabled(False)
        self._show(True, "Connecting…")
        self.job = start_job(
            "Reading the server's host key",
            job_from_function("Host key", lambda: probe_host_key(setup)),
            on_finished=lambda probe: self._probed(setup, probe),
            on_error=self._failed,
            parent=self,
        )

    def _probed(self, setup: SiteSetup, probe: HostKeyProbe | None) -> None:
        if not self.isVisible():
            return  # the dialog was closed while the key was fetched: ask nothing
        if probe is not None and probe.status == "changed":
            self._failed(HemaRelayError(probe.describe()))
            return
        if probe is not None and probe.status == "unknown":
            answer = self.ask(
                "Confirm the server's identity",
                probe.describe() + "\n\nTrust this server and remember its key?",
                ["Trust this server", "Cancel"],
            )
            if answer != "Trust this server":
                self._done_testing(False, "Not connected: the server's host key was not confirmed.")
                return
            try:
                trust_host_key(probe)
            except HemaRelayError as exc:
                self._failed(exc)
                return
        self.job = start_job(
            "Testing the connection",
            job_from_function("Connection", lambda: check_connection(setup)),
            on_finished=self._tested,
            on_error=self._failed,
            parent=self,
        )

    def _tested(self, report: ConnectionReport) -> None:
        if not self.isVisible():
            return
        self.last_report = report
        if report.ok and report.first_contact is not None and report.view is not None:
            # First contact with a signed ring: a person compares its keys, as with the host key.
            answer = self.ask(
                "Confirm the ring's signing keys",
                report.first_contact.describe() + "\n\nTrust these keys and settings?",
                ["Trust these keys", "Cancel"],
            )
            if answer != "Trust these keys":
                self._done_testing(
                    False,
                    "Connected, but the ring's signing keys were not confirmed: "
                    "this site will not train from or keep its weights until they are.",
                )
                return
            try:
                confirm_keys(self.setup(), report.view.manifest)
            except HemaRelayError as exc:
                self._failed(exc)
                return
            self._done_testing(
                True,
                report.message.replace(
                    " Its signing keys are not confirmed at this site yet.", " Its signing keys are confirmed."
                ),
            )
            return
        self._done_testing(report.ok, report.message)

    def _failed(self, exc: BaseException) -> None:
        self._done_testing(False, user_message(exc, "Testing the connection"))

    def _done_testing(self, ok: bool, text: str) -> None:
        self.test_button.setEnabled(True)
        self._show(ok, text)
