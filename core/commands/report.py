"""``hemarelay report``: hematoma volume reports as a CSV and one PDF per case."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from ..cases.case_files import case_id, provenance_path
from ..cases.datasets import list_cases
from ..cases.mask_origin import read_origin
from ..cases.worklist import filing_for_ct
from ..errors import ConfigError, InputError
from ..progress import drive
from ..reports import LARGE_ML_DEFAULT, ReportJob, export_reports
from . import add_command
from .console import ConsolePrinter


def register(subparsers) -> None:
    p = add_command(
        subparsers,
        "report",
        description="Measure each case's hematoma mask (planimetric volume, ABC/2, slices, "
        "largest axial area, mean HU, large-bleed flag) and write one CSV row per case; "
        "with --pdf-dir also a one-page PDF per case. Masks are measured as drawn: small "
        "components are not removed.",
    )
    p.add_argument("cts", nargs="+", metavar="CT", type=Path, help="CT scans (.nii/.nii.gz files or DICOM folders)")
    p.add_argument(
        "--mask",
        nargs="+",
        type=Path,
        metavar="M",
        dest="masks",
        help="one mask per CT, in the same order; by default mask_NNN.nii.gz beside each ct_NNN.nii.gz",
    )
    p.add_argument("--csv", type=Path, required=True, metavar="OUT.csv", help="CSV file to write (one row per case)")
    p.add_argument(
        "--pdf-dir", type=Path, metavar="DIR", help="folder for the one-page PDF reports (hematoma_report_<case>.pdf)"
    )
    p.add_argument(
        "--mask-source",
        default="manual",
        help='which mask this is, printed in the report (default "manual"; e.g. "model v12")',
    )
    p.add_argument(
        "--large-ml",
        type=float,
        default=LARGE_ML_DEFAULT,
        metavar="ML",
        help=f"flag hematomas of at least this volume (default {LARGE_ML_DEFAULT:g} mL)",
    )
    p.set_defaults(func=run)


def _mask_beside(ct: Path) -> Path:
    if ct.is_file():
        for case in list_cases(ct.parent):
            if case.ct_path.resolve() == ct.resolve():
                if case.mask_path is None:
                    break
                return case.mask_path
    raise InputError(
        f"{ct}: no mask given and no mask_<id>.nii.gz beside it "
        "(expected for a ct_<id>.nii.gz); pass the masks with --mask."
    )


def build_jobs(args: argparse.Namespace) -> list[ReportJob]:
    cts: list[Path] = [Path(c).expanduser() for c in args.cts]
    if args.masks is not None:
        if len(args.masks) != len(cts):
            raise InputError(
                f"{len(cts)} CT scan(s) but {len(args.masks)} mask(s); give one mask per CT, in the same order."
            )
        masks = [Path(m).expanduser() for m in args.masks]
    else:
        masks = [_mask_beside(ct) for ct in cts]
    return [
        ReportJob(case_id(ct), ct, m, args.mask_source, **filing_for_ct(ct), origin=read_origin(provenance_path(m)))
        for ct, m in zip(cts, masks)
    ]


def run(args: argparse.Namespace) -> int:
    if not (math.isfinite(args.large_ml) and args.large_ml > 0):
        raise ConfigError(f"--large-ml must be a positive volume in mL, got {args.large_ml:g}.")
    if not args.mask_source.strip():
        raise ConfigError("--mask-source must not be empty.")
    jobs = build_jobs(args)
    printer = ConsolePrinter()
    result = drive(export_reports(jobs, args.csv, args.pdf_dir, large_threshold_ml=args.large_ml), printer)
    printer.close()
    print(f"{'case':<12} {'volume mL':>10} {'ABC/2 mL':>9} {'slices':>6}  flag")
    for r in result.reports:
        flag = f">= {r.large_threshold_ml:g} mL" if r.large else ""
        print(f"{r.case:<12} {r.volume_ml:>10.2f} {r.abc2_ml:>9.2f} {r.n_slices:>6}  {flag}")
    print(f"CSV: {result.csv_path}")
    if result.pdf_paths:
        print(f"PDF: {len(result.pdf_paths)} file(s) in {Path(args.pdf_dir)}")
    return 0
