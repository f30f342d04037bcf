"""``hemarelay brain`` and ``hemarelay info``: imaging work on one CT."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..imaging.brain import brain_mask
from ..io import load_ct, save_mask
from . import add_command


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "brain",
        description="Write the brain mask of a CT (NIfTI file or DICOM folder) as uint8 NIfTI on the CT's grid.",
    )
    p.add_argument("ct", type=Path, help="CT: .nii/.nii.gz file or DICOM folder")
    p.add_argument("-o", "--output", type=Path, required=True, help="brain mask .nii.gz to write")
    p.set_defaults(func=_brain)

    p = add_command(sub, "info")
    p.add_argument("ct", type=Path)
    p.set_defaults(func=_info)


def _brain(args: argparse.Namespace) -> int:
    ct = load_ct(args.ct)
    for note in ct.notes:
        print(f"note: {note}")
    mask = brain_mask(ct)
    save_mask(mask, ct, args.output)
    print(f"{args.output}: brain {mask.sum() * ct.voxel_volume_ml:.0f} mL")
    return 0


def _info(args: argparse.Namespace) -> int:
    import nibabel as nib  # only for axis codes

    ct = load_ct(args.ct)
    print(f"{ct.source}")
    if ct.description:
        print(f"  {ct.description}")
    print(f"  grid: {ct.geometry_text()}; orientation {''.join(nib.aff2axcodes(ct.affine))}")
    print(f"  HU: {float(ct.data.min()):g} to {float(ct.data.max()):g} ({ct.data.dtype})")
    for note in ct.notes:
        print(f"  note: {note}")
    return 0
