"""``hemarelay export-seg``: a case's mask as a DICOM SEG over its source series."""

from __future__ import annotations

from pathlib import Path

from . import add_command


def register(subparsers) -> None:
    p = add_command(
        subparsers,
        "export-seg",
        description="Write the hematoma mask of a case that came from DICOM as a DICOM SEG "
        "referencing the source series and each of its images (a coded 'Hemorrhage' segment), "
        "so PACS viewers and 3D Slicer open it over the original images. MASK lies on the grid "
        "the series opens as (what the application and 'hemarelay' save); it is mapped back "
        "onto the source images, gantry-tilted series included.",
    )
    p.add_argument("ct_dir", type=Path, metavar="CT_DICOM_DIR", help="the CT's DICOM folder")
    p.add_argument("mask", type=Path, metavar="MASK", help="the mask (.nii/.nii.gz) on the series' grid")
    p.add_argument("-o", "--out", type=Path, required=True, metavar="seg.dcm", help="SEG file to write")
    p.add_argument(
        "--model",
        default="",
        metavar="NAME",
        help="the mask is a model's prediction: name the model (segment marked automatic)",
    )
    p.set_defaults(func=run)


def run(args) -> int:
    from ..reports.seg import export_seg

    r = export_seg(args.ct_dir, args.mask, args.out, automatic=bool(args.model), algorithm=args.model)
    print(
        f"SEG: {r.path} ({r.n_frames_with_mask} of {r.n_frames} source images hold hematoma, "
        f"{r.voxels_on_source} pixels)"
    )
    if r.note():
        print(r.note())
    return 0
