"""Volume reports from the GUI: the open case or the whole worklist, CSV + PDF.

The numbers and files come from :func:`core.reports.export_reports`, run on
a worker; this panel picks which mask to measure (the manual mask as it is on
screen, unsaved edits included, or the model's prediction), shows progress
with a Cancel button, and summarises the result, naming the mask measured.
Above the numbers it shows the open case's state (status, reviewer, unsaved
edits, the mask measured) from :func:`core.cases.case_state.case_state`, as the
worklist and the title do. "Export DICOM SEG…" and "Compare masks…" are asked
of the window (``segRequested``, ``compareRequested``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from core.reports import ExportResult, ReportJob, export_reports

from ..errors import is_cancel, user_message
from ..workers import Job, start_job

CaseJob = Callable[[bool], ReportJob]  # use_prediction -> job for the open case
WorklistJobs = Callable[[bool], tuple[list[ReportJob], list[str]]]  # -> jobs, cases left out


def csv_name(case: str | None) -> str:
    if case is None:
        return "hematoma_volumes.csv"
    return f"hematoma_volumes_{re.sub(r'[^A-Za-z0-9._-]', '_', case)}.csv"


class ReportPanel(QGroupBox):
    failed = Signal(str)
    written = Signal(object)  # ExportResult
    segRequested = Signal()
    compareRequested = Signal()

    def __init__(
        self,
        case_job: CaseJob,
        worklist_jobs: WorklistJobs,
        choose_folder: Callable[[], Path | None],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__("Volume report", parent)
        self.setObjectName("reportPanel")
        self._case_job, self._worklist_jobs, self._choose_folder = case_job, worklist_jobs, choose_folder
        self.job: Job | None = None
        self.state = QLabel("")
        self.state.setObjectName("caseState")
        self.state.setWordWrap(True)
        self.live = QLabel("No case open")
        self.live.setObjectName("liveVolume")
        self.live.setWordWrap(True)
        self.manual_radio = QRadioButton("manual mask")
        self.pred_radio = QRadioButton("model prediction")
        self.manual_radio.setChecked(True)
        group = QButtonGroup(self)
        group.addButton(self.manual_radio)
        group.addButton(self.pred_radio)
        which = QHBoxLayout()
        which.addWidget(QLabel("Measure:"))
        which.addWidget(self.manual_radio)
        which.addWidget(self.pred_radio)
        self.case_button = QPushButton("Report this case…")
        self.case_button.setObjectName("reportCase")
        self.all_button = QPushButton("Report worklist…")
        self.all_button.setObjectName("reportWorklist")
        self.case_button.clicked.connect(lambda: self._ask_and_export(whole=False))
        self.all_button.clicked.connect(lambda: self._ask_and_export(whole=True))
        buttons = QHBoxLayout()
        buttons.addWidget(self.case_button)
        buttons.addWidget(self.all_button)
        self.seg_button = QPushButton("Export DICOM SEG…")
        self.seg_button.setObjectName("exportSeg")
        self.seg_button.setToolTip("The manual mask as a DICOM Segmentation over the case's DICOM series")
        self.compare_button = QPushButton("Compare masks…")
        self.compare_button.setObjectName("compareMasks")
        self.compare_button.setToolTip(
            "Agreement of the manual mask with the model's prediction or "
            "another rater's mask: Dice, volumes, HD95, per slice"
        )
        self.seg_button.clicked.connect(self.segRequested.emit)
        self.compare_button.clicked.connect(self.compareRequested.emit)
        more = QHBoxLayout()
        more.addWidget(self.seg_button)
        more.addWidget(self.compare_button)
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        self.cancel = QPushButton("Cancel")
        self.cancel.setVisible(False)
        self.cancel.clicked.connect(lambda: self.job.cancel() if self.job else None)
        prow = QHBoxLayout()
        prow.addWidget(self.progress, 1)
        prow.addWidget(self.cancel)
        self.summary = QLabel("")
        self.summary.setObjectName("reportSummary")
        self.summary.setWordWrap(True)
        lay = QVBoxLayout(self)
        lay.addWidget(self.state)
        lay.addWidget(self.live)
        lay.addLayout(which)
        lay.addLayout(buttons)
        lay.addLayout(more)
        lay.addLayout(prow)
        lay.addWidget(self.summary)

    # ----------------------------------------------------------- live numbers
    def show_live(self, manual_ml: float | None, predicted_ml: float | None, mask_label: str, state: str = "") -> None:
        self.state.setText(state)
        if manual_ml is None:
            self.live.setText("No case open")
            return
        text = f"Manual mask: <b>{manual_ml:.2f} mL</b> ({mask_label})"
        if predicted_ml is not None:
            text += f"<br>Model prediction: {predicted_ml:.2f} mL"
        if manual_ml >= 30.0:
            text += "<br><span style='color:#c00000'><b>≥ 30 mL</b></span>"
        self.live.setText(text)

    # ----------------------------------------------------------- export
    def _ask_and_export(self, whole: bool) -> None:
        folder = self._choose_folder()
        if folder is not None:
            self.export(folder, whole)

    def export(self, folder: Path, whole: bool) -> Job | None:
        """Write the CSV and the PDFs into ``folder`` on a worker; None when nothing to do."""
        if self.job is not None and self.job.running:
            self.failed.emit("A report is already being written; wait for it or cancel it.")
            return None
        use_prediction = self.pred_radio.isChecked()
        try:
            if whole:
                jobs, left_out = self._worklist_jobs(use_prediction)
            else:
                jobs, left_out = [self._case_job(use_prediction)], []
        except Exception as exc:  # noqa: BLE001 - providers raise HemaRelayError for the user
            self.failed.emit(user_message(exc, "Preparing the report"))
            return None
        if not jobs:
            self.failed.emit(
                "No case has the chosen mask to report." + (f" Left out: {', '.join(left_out)}." if left_out else "")
            )
            return None
        csv_path = Path(folder) / csv_name(None if whole else jobs[0].case)
        self.progress.setRange(0, len(jobs))
        self.progress.setValue(0)
        self.progress.setVisible(True)
        self.cancel.setVisible(True)
        self.summary.setText("")
        self.job = start_job(
            "Volume reports",
            lambda token: export_reports(jobs, csv_path, folder, token=token),
            on_progress=lambda ev: (self.progress.setValue(int(ev.done)), self.progress.setFormat(ev.message or "%p%")),
            on_finished=lambda result: self._done(result, left_out),
            on_error=self._failed,
            parent=self,
        )
        return self.job

    def _finish(self) -> None:
        self.progress.setVisible(False)
        self.cancel.setVisible(False)

    def _done(self, result: ExportResult, left_out: list[str]) -> None:
        self._finish()
        lines = []
        for r in result.reports[:8]:
            flag = f" <b style='color:#c00000'>≥ {r.large_threshold_ml:g} mL</b>" if r.large else ""
            abc2 = f"ABC/2 {r.abc2_ml:.1f} mL" if r.abc2_agrees else "ABC/2 off by more than 2×, not used"
            lines.append(
                f"<b>{r.case}</b>: {r.volume_ml:.2f} mL ({abc2}), "
                f"{r.n_slices} slices, largest {r.largest_area_cm2:.2f} cm² — "
                f"{r.mask_source}{flag}"
            )
        if len(result.reports) > 8:
            lines.append(f"… and {len(result.reports) - 8} more")
        lines.append(
            f"CSV: {result.csv_path}<br>PDF: {len(result.pdf_paths)} file(s) in "
            f"{result.csv_path.parent if result.csv_path else ''}"
        )
        if left_out:
            lines.append("Left out (no such mask): " + ", ".join(left_out))
        self.summary.setText("<br>".join(lines))
        self.written.emit(result)

    def _failed(self, exc: BaseException) -> None:
        self._finish()
        if is_cancel(exc):
            self.summary.setText("Report cancelled; no file was written.")
        else:
            text = user_message(exc, "Writing the report")
            self.summary.setText(text)
            self.failed.emit(text)
