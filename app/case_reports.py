"""Reports, DICOM SEG export and mask comparison for the open case and the worklist.

The report panel asks this controller for its report jobs (the open case as
on screen, unsaved edits included, or every saved mask of the worklist with
the open case replaced by its on-screen state); "Export DICOM SEG…" and
"Compare masks…" run here, on workers, with the dialogs they need. The
numbers and files are core's (:mod:`core.reports`).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from core.cases.case_state import CaseState
from core.cases.provenance import prediction_model
from core.cases.worklist import CaseStatus, Worklist, report_jobs
from core.errors import HemaRelayError, InputError
from core.imaging.volume import Volume
from core.io import load_mask
from core.reports import ReportJob
from core.reports.agreement import MaskAgreement, compare_volumes
from core.reports.seg import seg_provenance, why_no_seg, write_seg
from core.site.versions import ModelVersion

from .case_controller import CaseController
from .errors import user_message
from .workers import Job, job_from_function, start_job


class CaseReports(QObject):
    message = Signal(str)  # for the status bar
    failed = Signal(str, str)  # text, dialog title
    jobStarted = Signal(object)  # Job, for the progress display

    def __init__(
        self,
        controller: CaseController,
        worklist: Callable[[], Worklist | None],
        case_state: Callable[[], CaseState | None],
        model_in_use: Callable[[], ModelVersion | None],
        parent: QWidget,
    ) -> None:
        super().__init__(parent)
        self.controller = controller
        self._worklist = worklist
        self._case_state = case_state
        self._model_in_use = model_in_use
        self._parent = parent
        self.last_agreement: MaskAgreement | None = None

    # ----------------------------------------------------------- report jobs
    def case_job(self, use_prediction: bool) -> ReportJob:
        s = self.controller.session
        if s is None:
            raise InputError("No case is open.")
        state = self._case_state()
        job = replace(
            s.report_job(use_prediction),
            case=self.controller.label or s.case_id,
            reviewer=(state.status_by if state else "") or "nobody yet",
            case_status=state.status_text if state else "",
        )
        if use_prediction:
            return replace(job, model_version=prediction_model(s.paths.prediction))
        # a mask that started from a model says which and what the reader changed (core.cases.mask_origin)
        job = replace(job, origin=s.origin_on_source(), reviewed_by=self._reviewed_by())
        chosen = self._model_in_use()  # the model the site uses, for the record
        return replace(
            job,
            model_version=f"{chosen.label()}, {chosen.hash_text()} (in use; the mask is manual)"
            if chosen is not None
            else "",
        )

    def _reviewed_by(self) -> str:
        state = self._case_state()
        if state is None or state.status not in (CaseStatus.REVIEWED, CaseStatus.APPROVED):
            return ""
        return state.status_by or "a reader not named"

    def worklist_jobs(self, use_prediction: bool) -> tuple[list[ReportJob], list[str]]:
        """Saved masks of every case, except the open one: measured as on screen."""
        wl = self._worklist()
        if wl is None:
            raise InputError("No site folder is open; open one with File > Open site folder.")
        jobs, left_out = report_jobs(wl.cases, use_prediction)
        label = self.controller.label
        if label is not None and self.controller.session is not None:
            jobs = [j for j in jobs if j.case != label]
            left_out = [x for x in left_out if x != label]
            try:
                jobs.append(self.case_job(use_prediction))
            except HemaRelayError:
                left_out.append(label)
            order = [c.label for c in wl.cases]
            jobs.sort(key=lambda j: order.index(j.case))
        return jobs, left_out

    def choose_folder(self, start: str) -> Path | None:
        folder = QFileDialog.getExistingDirectory(self._parent, "Folder for the report (CSV and PDFs)", start)
        return Path(folder) if folder else None

    # ----------------------------------------------------------- DICOM SEG
    def _mask_on_screen(self) -> tuple[Volume, str]:
        """The open case's manual mask as on screen (unsaved edits included), on the CT's grid."""
        job = self.controller.session.report_job(False)
        return job.mask, job.mask_source

    def export_seg(self, out: Path | None = None) -> Job | None:
        """The manual mask as a DICOM SEG over the case's source series (core.reports.seg)."""
        s = self.controller.session
        if s is None:
            return None
        reason = why_no_seg(s.ct)
        if reason:
            self.failed.emit(reason, "DICOM SEG")
            return None
        ct_dir = Path(s.ct.source)
        if out is None:
            path, _ = QFileDialog.getSaveFileName(
                self._parent,
                "Save the mask as DICOM SEG",
                str(ct_dir.parent / f"seg_{s.case_id}.dcm"),
                "DICOM files (*.dcm)",
            )
            if not path:
                return None
            out = Path(path)
        mask, _ = self._mask_on_screen()
        prov = s.mask_provenance(self._reviewed_by())  # AUTOMATIC, SEMIAUTOMATIC or MANUAL
        what = prov.source

        def work():
            return write_seg(ct_dir, mask, out, **seg_provenance(prov, creator=s.editor))

        job = start_job(
            "Exporting DICOM SEG",
            job_from_function("DICOM SEG", work),
            on_finished=lambda r: self.message.emit(
                f"DICOM SEG written: {r.path} ({what}; {r.n_frames_with_mask} of "
                f"{r.n_frames} source images hold hematoma). {r.note()}".strip()
            ),
            on_error=lambda exc: self.failed.emit(user_message(exc, "Exporting DICOM SEG"), "DICOM SEG"),
            parent=self,
        )
        self.jobStarted.emit(job)
        return job

    # ----------------------------------------------------------- comparing masks
    def compare_masks(self, other: Path | None = None) -> Job | None:
        """Agreement of the manual mask on screen with the model's prediction (``other`` None and
        a prediction shown) or with another mask file of this case (another rater's)."""
        s = self.controller.session
        if s is None:
            return None
        if other is None:
            choice = "A mask file…"
            if s.prediction is not None:
                choice = self.controller.ask(
                    "Compare masks",
                    "Compare the manual mask with:",
                    ["The model's prediction", "A mask file…", "Cancel"],
                )
            if choice == "Cancel":
                return None
            if choice == "A mask file…":
                path, _ = QFileDialog.getOpenFileName(
                    self._parent, "Another mask of this case", str(s.paths.folder), "Masks (*.nii *.nii.gz)"
                )
                if not path:
                    return None
                other = Path(path)
        a, name_a = self._mask_on_screen()
        ct = s.ct
        if other is None:
            b = ct.with_data(s.to_source(np.asarray(s.prediction, np.uint8)), source=None)
            name_b = s.prediction_label()

            def work():
                return compare_volumes(a, b, name_a, name_b)
        else:

            def work():
                return compare_volumes(a, load_mask(other, ct), name_a, other.name)

        job = start_job(
            "Comparing masks",
            job_from_function("Comparing masks", work),
            on_finished=self._show_agreement,
            on_error=lambda exc: self.failed.emit(user_message(exc, "Comparing masks"), "Compare masks"),
            parent=self,
        )
        self.jobStarted.emit(job)
        return job

    def _show_agreement(self, result: MaskAgreement) -> None:
        self.last_agreement = result
        head, _, table = result.text().partition(f"{'slice':>5}")
        box = QMessageBox(
            QMessageBox.Icon.Information,
            "Agreement between two masks",
            head.strip(),
            QMessageBox.StandardButton.Ok,
            self._parent,
        )
        box.setObjectName("agreementDialog")
        if table:
            box.setDetailedText(f"{'slice':>5}{table}")
        box.open()
        self.message.emit(head.strip().splitlines()[-1])
