"""File > PACS settings…: the hospital's PACS (DICOMweb or DIMSE), its limits,
and where the password is kept.

The password is never written to the settings file: with "Remember in the
system keyring" it goes to the OS keyring (core/pacs/credentials.py), else it
is kept in memory until the application closes. "Test connection" queries the
PACS on a worker thread and says what it found in one line.
"""

from __future__ import annotations

from dataclasses import replace

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
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from core.errors import HemaRelayError
from core.pacs import credentials
from core.pacs.client import StudyQuery
from core.pacs.config import DICOMWEB, DIMSE, PacsConfig
from core.pacs.connect import open_client

from .browse_row import with_browse
from .errors import user_message
from .workers import Job, job_from_function, start_job

_PROTOCOLS = [
    ("No PACS", ""),
    ("DICOMweb (QIDO/WADO/STOW over http/https)", DICOMWEB),
    ("DIMSE (C-FIND/C-GET/C-STORE)", DIMSE),
]


class PacsSettingsDialog(QDialog):
    def __init__(self, config: PacsConfig, parent: QWidget | None = None, password: str = "") -> None:
        super().__init__(parent)
        self.setObjectName("pacsSettingsDialog")
        self.setWindowTitle("PACS settings")
        self._base = config
        self.job: Job | None = None
        self.protocol = QComboBox()
        for text, value in _PROTOCOLS:
            self.protocol.addItem(text, value)
        self.protocol.setCurrentIndex(max(0, [v for _, v in _PROTOCOLS].index(config.protocol)))
        # DICOMweb
        self.url = QLineEdit(config.url)
        self.url.setPlaceholderText("https://pacs.hospital.org/dicom-web")
        self.user = QLineEdit(config.username)
        self.user.setPlaceholderText("empty: no authentication")
        self.password = QLineEdit(password)
        self.password.setObjectName("pacsPassword")
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.password.setPlaceholderText("never written to the settings file")
        self.remember = QCheckBox("Remember in the system keyring")
        self.remember.setEnabled(credentials.keyring_available())
        if not credentials.keyring_available():
            self.remember.setToolTip(
                f"No system keyring here: the password is kept until the application closes, or set {credentials.ENV}."
            )
        web = QWidget()
        wf = QFormLayout(web)
        wf.setContentsMargins(0, 0, 0, 0)
        wf.addRow("DICOMweb base URL", self.url)
        wf.addRow("User name", self.user)
        wf.addRow("Password", self.password)
        wf.addRow("", self.remember)
        # DIMSE
        self.host = QLineEdit(config.host)
        self.port = QSpinBox()
        self.port.setRange(1, 65535)
        self.port.setValue(config.port)
        self.called = QLineEdit(config.called_ae)
        self.called.setPlaceholderText("the PACS's AE title")
        self.calling = QLineEdit(config.calling_ae)
        self.tls = QCheckBox("DICOM TLS")
        self.tls.setChecked(config.tls)
        dimse = QWidget()
        df = QFormLayout(dimse)
        df.setContentsMargins(0, 0, 0, 0)
        df.addRow("PACS host", self.host)
        df.addRow("PACS port", self.port)
        df.addRow("PACS AE title", self.called)
        df.addRow("This workstation's AE title", self.calling)
        df.addRow("", self.tls)
        self.pages = QStackedWidget()
        self.pages.addWidget(QLabel("Choose how this site reaches its PACS."))
        self.pages.addWidget(web)
        self.pages.addWidget(dimse)
        # both
        self.ca = QLineEdit(config.ca_file)
        self.ca.setPlaceholderText("empty: the system's certificate authorities")
        ca_row = with_browse(
            self.ca, lambda: QFileDialog.getOpenFileName(self, "CA certificate file (PEM)", self.ca.text())[0]
        )
        self.limit = QDoubleSpinBox()
        self.limit.setObjectName("pacsSizeLimit")
        self.limit.setRange(1, 1_000_000)
        self.limit.setDecimals(0)
        self.limit.setSuffix(" MB")
        self.limit.setValue(config.max_study_mb)
        self.timeout = QDoubleSpinBox()
        self.timeout.setRange(1, 600)
        self.timeout.setDecimals(0)
        self.timeout.setSuffix(" s")
        self.timeout.setValue(config.timeout_s)
        self.send_pdf = QCheckBox("Also send the PDF report (Encapsulated PDF)")
        self.send_pdf.setChecked(config.send_pdf)
        form = QFormLayout()
        form.addRow("Protocol", self.protocol)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(self.pages)
        more = QFormLayout()
        more.addRow("CA file (TLS)", ca_row)
        more.addRow("Largest retrieve", self.limit)
        more.addRow("Timeout", self.timeout)
        more.addRow("", self.send_pdf)
        lay.addLayout(more)
        self.test_button = QPushButton("Test connection")
        self.test_button.setObjectName("pacsTest")
        self.test_button.clicked.connect(self.test_connection)
        row = QHBoxLayout()
        row.addWidget(self.test_button)
        row.addStretch(1)
        lay.addLayout(row)
        self.result = QLabel("")
        self.result.setObjectName("pacsTestResult")
        self.result.setWordWrap(True)
        self.result.setTextFormat(Qt.TextFormat.PlainText)  # may quote the server
        self.result.setMinimumWidth(480)
        lay.addWidget(self.result)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)
        self.protocol.currentIndexChanged.connect(self.pages.setCurrentIndex)
        self.pages.setCurrentIndex(self.protocol.currentIndex())

    def config(self) -> PacsConfig:
        """The edited set-up, validated (ConfigError says what is wrong)."""
        return replace(
            self._base,
            protocol=self.protocol.currentData(),
            url=self.url.text().strip(),
            username=self.user.text().strip(),
            ca_file=self.ca.text().strip(),
            host=self.host.text().strip(),
            port=self.port.value(),
            called_ae=self.called.text().strip(),
            calling_ae=self.calling.text().strip(),
            tls=self.tls.isChecked(),
            timeout_s=self.timeout.value(),
            max_study_mb=self.limit.value(),
            send_pdf=self.send_pdf.isChecked(),
        ).validated()

    def typed_password(self) -> str:
        return self.password.text()

    def _show(self, ok: bool, text: str) -> None:
        self.result.setText(text)
        self.result.setStyleSheet("color: #1a7f37;" if ok else "color: #c03020;")

    def _accept(self) -> None:
        try:
            cfg = self.config()
            if self.remember.isChecked() and self.password.text():
                credentials.remember(cfg, self.password.text())
        except HemaRelayError as exc:
            self._show(False, str(exc))
            return
        self.accept()

    def test_connection(self) -> None:
        try:
            cfg = self.config().require()
        except HemaRelayError as exc:
            self._show(False, str(exc))
            return
        typed = self.password.text()

        def probe() -> str:
            client = open_client(cfg, prompt=lambda _q: typed or None)
            try:
                found = client.find_studies(StudyQuery(modality="CT", limit=5))
            finally:
                client.close()
            return f"Connected to {cfg.describe()}: it answers queries ({len(found)} CT studies listed, up to 5 asked)."

        self.test_button.setEnabled(False)
        self._show(True, "Connecting…")
        self.job = start_job(
            "Testing the PACS",
            job_from_function("PACS", probe),
            on_finished=lambda text: self._tested(True, text),
            on_error=lambda exc: self._tested(False, user_message(exc, "Testing the PACS")),
            parent=self,
        )

    def _tested(self, ok: bool, text: str) -> None:
        self.test_button.setEnabled(True)
        self._show(ok, text)
