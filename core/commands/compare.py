"""``hemarelay compare``: agreement between two masks of one case."""

from __future__ import annotations

import json
from pathlib import Path

from ..io import atomic_write_text
from . import add_command


def register(subparsers) -> None:
    p = add_command(
        subparsers,
        "compare",
        description="Compare two hematoma masks of one case (two raters, or manual vs model): "
        "Dice, both volumes and their difference, the 95th-percentile surface distance (HD95) "
        "in mm, and a per-slice table (slices numbered from 1 at the inferior end, as in the "
        "viewer). Printed in the terminal; --json also writes it as JSON.",
    )
    p.add_argument("mask_a", type=Path, metavar="MASK_A", help="first mask (.nii/.nii.gz)")
    p.add_argument("mask_b", type=Path, metavar="MASK_B", help="second mask (.nii/.nii.gz)")
    p.add_argument(
        "--ct", type=Path, metavar="CT", help="the case's CT (file or DICOM folder): both masks must lie on its grid"
    )
    p.add_argument("--json", type=Path, metavar="OUT.json", help="also write the result as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..reports.agreement import compare_files

    result = compare_files(args.mask_a, args.mask_b, args.ct)
    print(result.text())
    if args.json is not None:
        atomic_write_text(args.json, json.dumps(result.to_json(), indent=1) + "\n")
        print(f"JSON: {args.json}")
    return 0
