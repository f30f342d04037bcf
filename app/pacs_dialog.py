"""File > Get studies from PACS…: search, choose a series, retrieve it into the worklist.

A search form (patient id, accession number, date range, modality), the
studies found, the selected study's series (the CT series with most images is
chosen for you; other modalities cannot be retrieved), and "Get series", which
runs :func:`core.pacs.retrieve.retrieve_series` on a worker with a progress
bar and Cancel. A cancelled or failed retrieve leaves nothing in the worklist
and continues where it stopped the next time. Each retrieved case is announced
with ``caseRetrieved`` (the window shows it in the worklist).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from core.pacs.client import PacsClient, SeriesMatch, StudyMatch, StudyQuery
from core.pacs.retrieve import RetrieveResult, retrieve_series
from core.progress import CancelToken

from .errors import is_cancel, user_message
from .workers import Job, job_from_function, start_job

ClientFactory = Callable[[], PacsClient]
_STUDY_COLUMNS = ["Date", "Patient ID", "Patient", "Accession", "Modalities", "Series", "Images", "Description"]
_SERIES_COLUMNS = ["No.", "Modality", "Images", "Description"]


def _date(d: str) -> str:
    return f"{d[:4]}-{d[4:6]}-{d[6:8]}" if len(d) == 8 and d.isdigit() else d


def _table(columns: list[str], name: str) -> QTableWidget:
    t = QTableWidget(0, len(columns))
    t.setObjectName(name)
    t.setHorizontalHeaderLabels(columns)
    t.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    t.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    t.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    t.verticalHeader().setVisible(False)
    t.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    t.horizontalHeader().setStretchLastSection(True)
    return t


class PacsDialog(QDialog):
    caseRetrieved = Signal(object)  # RetrieveResult

    def __init__(self, make_client: ClientFactory, folder: Callable[[], Path], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("pacsDialog")
        self.setWindowTitle("Get studies from PACS")
        self.resize(980, 620)
        self.make_client = make_client
        self.folder = folder
        self.job: Job | None = None
        self.studies: list[StudyMatch] = []
        self.series: list[SeriesMatch] = []
        self.patient = QLineEdit()
        self.patient.setObjectName("pacsPatientId")
        self.accession = QLineEdit()
        self.date_from = QLineEdit()
        self.date_from.setPlaceholderText("YYYY-MM-DD")
        self.date_to = QLineEdit()
        self.date_to.setPlaceholderText("YYYY-MM-DD")
        self.modality = QComboBox()
        self.modality.addItem("CT", "CT")
        self.modality.addItem("any", "")
        self.search_button = QPushButton("Search")
        self.search_button.setObjectName("pacsSearch")
        self.search_button.setDefault(True)
        form = QFormLayout()
        form.addRow("Patient ID", self.patient)
        form.addRow("Accession number", self.accession)
        dates = QHBoxLayout()
        dates.addWidget(self.date_from)
        dates.addWidget(QLabel("to"))
        dates.addWidget(self.date_to)
        form.addRow("Study date", dates)
        form.addRow("Modality in study", self.modality)
        self.study_table = _table(_STUDY_COLUMNS, "pacsStudies")
        self.series_table = _table(_SERIES_COLUMNS, "pacsSeries")
        self.get_button = QPushButton("Get series")
        self.get_button.setObjectName("pacsGet")
        self.get_button.setEnabled(False)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setObjectName("pacsCancel")
        self.cancel_button.setEnabled(False)
        self.bar = QProgressBar()
        self.bar.setObjectName("pacsProgress")
        self.bar.setRange(0, 100)
        self.bar.setValue(0)
        self.state = QLabel(f"Cases go to {folder()}.")
        self.state.setObjectName("pacsState")
        self.state.setWordWrap(True)
        self.state.setTextFormat(Qt.TextFormat.PlainText)  # quotes the PACS
        lay = QVBoxLayout(self)
        top = QHBoxLayout()
        top.addLayout(form, 1)
        top.addWidget(self.search_button, 0, Qt.AlignmentFlag.AlignBottom)
        lay.addLayout(top)
        lay.addWidget(QLabel("Studies"))
        lay.addWidget(self.study_table, 3)
        lay.addWidget(QLabel("Series of the selected study (the CT series with most images is chosen)"))
        lay.addWidget(self.series_table, 2)
        row = QHBoxLayout()
        row.addWidget(self.bar, 1)
        row.addWidget(self.get_button)
        row.addWidget(self.cancel_button)
        lay.addLayout(row)
        lay.addWidget(self.state)
        self.search_button.clicked.connect(self.search)
        self.study_table.itemSelectionChanged.connect(self._study_selected)
        self.series_table.itemSelectionChanged.connect(self._series_selected)
        self.get_button.clicked.connect(self.get_selected)
        self.cancel_button.clicked.connect(self.cancel)

    # ----------------------------------------------------------- state
    def _say(self, text: str, ok: bool = True) -> None:
        self.state.setText(text)
        self.state.setStyleSheet("" if ok else "color: #c03020;")

    def _busy(self, on: bool) -> None:
        self.search_button.setEnabled(not on)
        self.cancel_button.setEnabled(on)
        self.get_button.setEnabled(not on and self._chosen_series() is not None)

    def _run(self, name: str, factory, done) -> Job:
        self._busy(True)

        def failed(exc: BaseException) -> None:
            self._busy(False)
            self.bar.setValue(0)
            self._say(
                "Cancelled; nothing was added to the worklist." if is_cancel(exc) else user_message(exc, name), False
            )

        def finished(value) -> None:
            self._busy(False)
            done(value)

        self.job = start_job(
            name, factory, on_progress=self._progress, on_finished=finished, on_error=failed, parent=self
        )
        return self.job

    def _progress(self, ev) -> None:
        if ev.total:
            self.bar.setValue(int(100 * ev.done / ev.total))
        self._say(f"{ev.stage}: {ev.message}" if ev.message else ev.stage)

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()

    # ----------------------------------------------------------- search
    def query(self) -> StudyQuery:
        return StudyQuery(
            self.patient.text().strip(),
            self.accession.text().strip(),
            self.date_from.text().strip(),
            self.date_to.text().strip(),
            self.modality.currentData(),
        ).validated()

    def search(self) -> Job | None:
        try:
            q = self.query()
        except Exception as exc:  # noqa: BLE001 - a ConfigError from the form: shown, never raised
            self._say(user_message(exc, "Searching"), False)
            return None
        make = self.make_client

        def find():
            client = make()
            try:
                return client.find_studies(q)
            finally:
                client.close()

        return self._run("Searching the PACS", job_from_function("Searching the PACS", find), self._show_studies)

    def _show_studies(self, studies: list[StudyMatch]) -> None:
        self.studies = studies
        self.series = []
        self.series_table.setRowCount(0)
        self.study_table.clearSelection()  # selecting row 0 again must list its series again
        self.study_table.setRowCount(len(studies))
        for r, s in enumerate(studies):
            values = [
                _date(s.study_date),
                s.patient_id,
                s.patient_name,
                s.accession_number,
                "/".join(s.modalities),
                "" if s.n_series is None else str(s.n_series),
                "" if s.n_instances is None else str(s.n_instances),
                s.description,
            ]
            for c, v in enumerate(values):
                self.study_table.setItem(r, c, QTableWidgetItem(v))
        self._say(f"{len(studies)} studies found." if studies else "No study matches.")
        if studies:
            self.study_table.selectRow(0)

    def _study_selected(self) -> None:
        study = self._chosen_study()
        self.series_table.setRowCount(0)
        self.series = []
        self.get_button.setEnabled(False)
        if study is None or (self.job is not None and self.job.running):
            return
        make = self.make_client

        def find():
            client = make()
            try:
                return client.find_series(study.study_uid)
            finally:
                client.close()

        self._run("Listing the series", job_from_function("Listing the series", find), self._show_series)

    def _show_series(self, series: list[SeriesMatch]) -> None:
        self.series = series
        self.series_table.setRowCount(len(series))
        for r, s in enumerate(series):
            values = [s.number, s.modality, "" if s.n_instances is None else str(s.n_instances), s.description]
            for c, v in enumerate(values):
                item = QTableWidgetItem(v)
                if s.modality != "CT":  # only CT becomes a case
                    item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEnabled & ~Qt.ItemFlag.ItemIsSelectable)
                self.series_table.setItem(r, c, item)
        cts = [n for n, s in enumerate(series) if s.modality == "CT"]
        if cts:
            self.series_table.selectRow(max(cts, key=lambda n: series[n].n_instances or 0))
            self._say(f"{len(series)} series; {len(cts)} CT.")
        else:
            self._say("This study has no CT series; only CT series become cases.", False)
        self.get_button.setEnabled(bool(cts))

    def _series_selected(self) -> None:
        self.get_button.setEnabled(self._chosen_series() is not None and not (self.job and self.job.running))

    def _chosen_study(self) -> StudyMatch | None:
        rows = self.study_table.selectionModel().selectedRows()
        return self.studies[rows[0].row()] if rows and rows[0].row() < len(self.studies) else None

    def _chosen_series(self) -> SeriesMatch | None:
        rows = self.series_table.selectionModel().selectedRows()
        return self.series[rows[0].row()] if rows and rows[0].row() < len(self.series) else None

    # ----------------------------------------------------------- retrieve
    def get_selected(self) -> Job | None:
        study, series = self._chosen_study(), self._chosen_series()
        if study is None or series is None:
            self._say("Choose a study and one of its CT series first.", False)
            return None
        folder = self.folder()
        make = self.make_client

        def work(token: CancelToken):
            client = make()
            try:
                return (yield from retrieve_series(client, study.study_uid, folder, series.series_uid, token))
            finally:
                client.close()

        self.bar.setValue(0)
        return self._run("Getting the series", work, self._retrieved)

    def _retrieved(self, result: RetrieveResult) -> None:
        self.bar.setValue(100)
        self._say(result.text())
        self.caseRetrieved.emit(result)
