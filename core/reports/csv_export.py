"""The worklist's volume reports as one CSV file (one row per case)."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Iterable

from ..io import atomic_write_text
from .case import CaseReport

# (column, CaseReport attribute, decimals; None = as is)
COLUMNS: tuple[tuple[str, str, int | None], ...] = (
    ("case", "case", None),
    ("patient_name", "study.patient_name", None),
    ("patient_id", "study.patient_id", None),
    ("accession_number", "study.accession_number", None),
    ("study_date", "study.study_date", None),
    ("series_description", "study.series_description", None),
    ("case_status", "case_status", None),
    ("reviewer", "reviewer", None),
    ("mask_source", "mask_source", None),  # "manual (...)", "model X, corrected by Y (...)", "model X, unreviewed"
    ("mask_model", "mask_model", None),  # the model the mask started from; empty: drawn by hand
    ("dice_vs_accepted_prediction", "dice_vs_prediction", 4),  # the reader's changes to it
    ("voxels_added", "voxels_added", None),
    ("voxels_removed", "voxels_removed", None),
    ("model_version", "model_version", None),
    ("software_version", "software_version", None),
    ("date", "date", None),
    ("volume_ml", "volume_ml", 3),
    ("abc2_ml", "abc2_ml", 3),  # an estimate; see abc2_agrees
    ("abc2_agrees", "abc2_agrees", None),  # within 2x of the planimetric volume
    ("abc2_a_mm", "a_mm", 1),
    ("abc2_b_mm", "b_mm", 1),
    ("abc2_c_mm", "c_mm", 1),
    ("slices_with_hematoma", "n_slices", None),
    ("slices_total", "n_total_slices", None),
    ("slice_thickness_mm", "slice_thickness_mm", 2),
    ("largest_area_cm2", "largest_area_cm2", 3),
    ("largest_area_slice", "largest_area_slice", None),  # 1-based as in the viewer; 0 = none
    ("largest_area_z_mm", "largest_area_z_mm", 1),
    ("mean_hu", "mean_hu", 1),
    ("components", "n_components", None),
    ("large", "large", None),
    ("large_threshold_ml", "large_threshold_ml", 1),
    ("measurements", "measurements", None),  # the reader's measurements, "; "-separated
)


def _cell(value, decimals: int | None) -> str:
    if value is None:
        return ""
    if isinstance(value, tuple):
        return "; ".join(str(v) for v in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return ""  # empty mask: no slice height, no mean HU
        return f"{value:.{decimals}f}" if decimals is not None else repr(value)
    return str(value)


def _get(obj, dotted: str):
    for name in dotted.split("."):
        obj = getattr(obj, name)
    return obj


def csv_text(reports: Iterable[CaseReport]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([c for c, _, _ in COLUMNS])
    for r in reports:
        writer.writerow([_cell(_get(r, attr), dec) for _, attr, dec in COLUMNS])
    return buf.getvalue()


def write_csv(reports: Iterable[CaseReport], path: str | Path) -> Path:
    """Write the CSV atomically (temp file beside it, then rename)."""
    return atomic_write_text(path, csv_text(reports))
