"""Report export over many cases: a progress generator that can be cancelled.

All output (the CSV and every PDF) is written to temp files beside their
targets and renamed into place only after the last case succeeded, so a
cancelled or failed export leaves no new or half-written file (a PDF folder it
had to create is removed again when it stays empty).
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Generator, Sequence

import numpy as np

from ..cases.mask_origin import MaskOrigin, mask_provenance
from ..cases.measurements import case_measurement_lines
from ..errors import InputError
from ..imaging.volume import Volume, same_grid
from ..io import atomic_path, load_ct, load_mask
from ..io.dicom_source import study_info
from ..progress import NEVER_CANCELLED, CancelToken, EtaClock, Progress
from .case import LARGE_ML_DEFAULT, NOT_RECORDED, CanonicalCase, CaseReport, measure_canonical
from .csv_export import csv_text

STAGE = "Volume reports"


@dataclass(frozen=True)
class ReportJob:
    """One case to report: files on disk, or volumes already in memory (the GUI's
    current, possibly unsaved, mask)."""

    case: str
    ct: Path | Volume
    mask: Path | Volume
    mask_source: str = "manual"
    measurements: tuple[str, ...] | None = None  # report lines; None: read those beside a mask file
    reviewer: str = NOT_RECORDED  # who set the case's status
    case_status: str = NOT_RECORDED
    model_version: str = ""  # the model that made the mask, or the site's model in use
    # the model prediction a manual mask started from (accepted voxels on the CT's grid), and
    # who marked the case reviewed ("" while it is not): the report says "model X, corrected by Y"
    origin: MaskOrigin | None = None
    reviewed_by: str = ""

    def filing(self, ct: Volume) -> dict:
        """The report's filing fields for this job (patient details read from ``ct``'s DICOM)."""
        return {
            "study": study_info(ct),
            "reviewer": self.reviewer or NOT_RECORDED,
            "case_status": self.case_status or NOT_RECORDED,
            "model_version": self.model_version,
        }


@dataclass(frozen=True)
class ExportResult:
    reports: tuple[CaseReport, ...]
    csv_path: Path | None
    pdf_paths: tuple[Path, ...]


def pdf_name(case: str) -> str:
    """File name of a case's PDF; characters unsafe in file names become '_'."""
    return f"hematoma_report_{re.sub(r'[^A-Za-z0-9._-]', '_', case)}.pdf"


def _provenance(job: ReportJob, ct: Volume, mask: Volume) -> dict:
    """The mask's provenance fields of the report (core.cases.mask_origin); {} for a mask drawn by hand."""
    origin = job.origin
    if origin is None or origin.accepted.shape != tuple(mask.shape):
        return {}
    prov = mask_provenance(origin, np.asarray(mask.data), ct.voxel_volume_ml, job.reviewed_by, job.mask_source)
    corr = prov.corrections
    assert corr is not None
    return {
        "mask_source": prov.source,
        "mask_model": prov.model,
        "model_version": prov.model,
        "dice_vs_prediction": corr.dice,
        "voxels_added": corr.added,
        "voxels_removed": corr.removed,
    }


def _load(job: ReportJob) -> tuple[CanonicalCase, Volume, dict]:
    ct = job.ct if isinstance(job.ct, Volume) else load_ct(job.ct)
    if isinstance(job.mask, Volume):
        mask = job.mask
        if not same_grid(ct, mask):
            raise InputError(
                f"case {job.case}: the mask does not fit its CT. Mask: "
                f"{mask.geometry_text()}; CT: {ct.geometry_text()}."
            )
    else:
        mask = load_mask(job.mask, ct)
    return CanonicalCase.from_volumes(ct, mask), ct, _provenance(job, ct, mask)


def _measurement_lines(job: ReportJob) -> tuple[str, ...]:
    if job.measurements is not None:
        return job.measurements
    if isinstance(job.mask, Volume):
        return ()
    return tuple(case_measurement_lines(job.mask))


def export_reports(
    jobs: Sequence[ReportJob],
    csv_path: str | Path | None = None,
    pdf_dir: str | Path | None = None,
    *,
    large_threshold_ml: float = LARGE_ML_DEFAULT,
    token: CancelToken = NEVER_CANCELLED,
    date: str | None = None,
) -> Generator[Progress, None, ExportResult]:
    """Measure every case, then publish the CSV and one PDF per case.

    Yields a :class:`Progress` per case (``done`` counts finished cases) and
    checks ``token`` before each case and before publishing. Returns the
    reports and the paths written.
    """
    from .pdf import render_pdf, slices_png  # matplotlib and reportlab: only when reports are made

    jobs = list(jobs)
    if not jobs:
        raise InputError("No cases to report.")
    names = [j.case for j in jobs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InputError(f"Case names must be unique in one report; repeated: {', '.join(dupes)}.")
    pdf_folder = Path(pdf_dir) if pdf_dir is not None else None
    made_folder = pdf_folder is not None and not pdf_folder.exists()

    clock = EtaClock()
    total = len(jobs)
    reports: list[CaseReport] = []
    pdf_paths: list[Path] = []
    try:
        with contextlib.ExitStack() as staged:  # every atomic_path renames on a clean exit only
            for n, job in enumerate(jobs):
                token.raise_if_cancelled()
                yield Progress(STAGE, n, total, f"case {job.case} ({n + 1} of {total})", clock.eta(n, total))
                cc, ct, provenance = _load(job)
                extra = {**job.filing(ct), "measurements": _measurement_lines(job), **provenance}
                source = extra.pop("mask_source", job.mask_source)
                report = measure_canonical(cc, job.case, source, large_threshold_ml, date, extra)
                reports.append(report)
                if pdf_folder is not None:
                    target = pdf_folder / pdf_name(job.case)
                    png = slices_png(cc, report)
                    token.raise_if_cancelled()
                    render_pdf(report, png, staged.enter_context(atomic_path(target)), report.measurements)
                    pdf_paths.append(target)
                del cc, ct
            token.raise_if_cancelled()
            if csv_path is not None:
                tmp = staged.enter_context(atomic_path(csv_path))
                tmp.write_text(csv_text(reports), encoding="utf-8")
            yield Progress(STAGE, total, total, "writing the files", 0.0)
            token.raise_if_cancelled()
    except BaseException:
        if made_folder and pdf_folder.is_dir() and not any(pdf_folder.iterdir()):
            with contextlib.suppress(OSError):
                pdf_folder.rmdir()
        raise
    return ExportResult(tuple(reports), Path(csv_path) if csv_path is not None else None, tuple(pdf_paths))
