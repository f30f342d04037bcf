"""Hematoma volume reports: per-case numbers, the worklist CSV, one-page PDFs.

Used by the GUI's report panel and by ``hemarelay report``. Masks are
measured as drawn: small components are not removed (see :mod:`.case`).
"""

from ..lazy import lazy_getattr
from .case import LARGE_ML_DEFAULT, CanonicalCase, CaseReport, key_slices, measure_case
from .csv_export import COLUMNS, csv_text, write_csv
from .export import ExportResult, ReportJob, export_reports, pdf_name

# The PDF renderer (matplotlib, reportlab) is imported on first use, not at start-up.
__getattr__ = lazy_getattr(__name__, {"DISCLAIMER": "pdf", "write_case_pdf": "pdf"}, globals())


__all__ = [
    "LARGE_ML_DEFAULT",
    "CanonicalCase",
    "CaseReport",
    "key_slices",
    "measure_case",
    "COLUMNS",
    "csv_text",
    "write_csv",
    "ExportResult",
    "ReportJob",
    "export_reports",
    "pdf_name",
    "DISCLAIMER",
    "write_case_pdf",
]
