"""A case's hematoma mask as a DICOM Segmentation (SEG) of its source series.

Written with highdicom, which builds the IOD and checks what it writes: a
binary segmentation with one coded segment (SNOMED CT "Hemorrhage",
category "Morphologically abnormal structure"), referencing the source series
and, for each frame, the source image it lies on. PACS viewers and 3D Slicer
open it as a segmentation over the original images. The mask is mapped from
the working grid back onto the source frames by
:func:`core.io.dicom_source.mask_on_source_frames` (gantry-tilted series
included). Frames without hematoma are left out of the file, as highdicom
does by default; reading back gives them as zeros.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .. import __version__
from ..errors import InputError
from ..imaging.volume import Volume, same_grid
from ..io import atomic_path, load_ct, load_mask
from ..io.dicom_source import mask_on_source_frames, read_frames, series_files, slices_between_frames

SEGMENT_LABEL = "Hemorrhage"
# SNOMED CT: 50960005 "Hemorrhage"; 49755003 "Morphologically abnormal structure".
_HEMORRHAGE = ("50960005", "SCT", "Hemorrhage")
_CATEGORY = ("49755003", "SCT", "Morphologically abnormal structure")


@dataclass(frozen=True)
class SegResult:
    path: Path
    n_frames: int  # source frames referenced
    n_frames_with_mask: int
    voxels_on_source: int  # mask pixels over all source frames
    slices_between_frames: tuple[int, ...] = ()  # working slices with mask that no frame samples

    def note(self) -> str:
        if not self.slices_between_frames:
            return ""
        return (
            f"{len(self.slices_between_frames)} slice(s) of the mask lie between the source images "
            "(the series has gaps wider than its working slices) and are not in the SEG."
        )


def why_no_seg(ct: Volume | Path | str) -> str:
    """ "" when a SEG can be written for this case, else the reason in plain words."""
    source = ct.source if isinstance(ct, Volume) else Path(ct)
    if source is not None and Path(source).is_dir():
        return ""
    return (
        "A DICOM SEG is stored over the hospital's original DICOM images and refers to each "
        "of them; this case was opened from a NIfTI file, which does not keep those images or "
        "their identifiers. Open the case from its DICOM series folder to export a SEG."
    )


# Patient and study attributes a SEG copies from its source images. DICOM lets them
# be empty (type 2) but not absent; anonymised series often drop them entirely.
_TYPE2 = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "StudyID",
    "AccessionNumber",
)


def with_type2_attributes(ds):
    """The in-memory header with absent type-2 attributes present and empty (the
    source files are never modified)."""
    for key in _TYPE2:
        if key not in ds:
            setattr(ds, key, "")
    return ds


def write_seg(
    ct_dir: str | Path,
    mask: Volume,
    out: str | Path,
    *,
    automatic: bool = False,
    algorithm: str = "",
    semiautomatic: bool = False,
    description: str = "",
    creator: str = "",
) -> SegResult:
    """Write ``mask`` (on the working grid of the series in ``ct_dir``) as a DICOM SEG at ``out``
    (atomically). ``automatic`` marks a model's mask, ``semiautomatic`` one a reader corrected
    (core.cases.mask_origin); ``algorithm`` names the model, ``description`` says where the mask came
    from ("model X, corrected by Y"), ``creator`` who made or corrected it."""
    seg, result = build_seg(
        ct_dir,
        mask,
        automatic=automatic,
        algorithm=algorithm,
        semiautomatic=semiautomatic,
        description=description,
        creator=creator,
    )
    out = Path(out)
    with atomic_path(out) as tmp:
        seg.save_as(str(tmp))
    return replace(result, path=out)


def build_seg(
    ct_dir: str | Path,
    mask: Volume,
    *,
    automatic: bool = False,
    algorithm: str = "",
    semiautomatic: bool = False,
    description: str = "",
    creator: str = "",
    series_uid: str = "",
    sop_uid: str = "",
    tracking_uid: str = "",
):
    """The SEG dataset (highdicom) and what it holds, without writing it (the arguments as
    :func:`write_seg`'s). New UIDs unless given (``core.pacs.send`` derives them from the
    mask, so re-sending replaces)."""
    import highdicom as hd
    import pydicom
    from pydicom.sr.codedict import codes
    from pydicom.sr.coding import Code

    ct_dir = Path(ct_dir)
    reason = why_no_seg(ct_dir)
    if reason:
        raise InputError(f"{ct_dir}: {reason}")
    files = series_files(ct_dir)
    frames = read_frames(files)
    pixels = mask_on_source_frames(mask, frames)
    if not pixels.any():
        if np.asarray(mask.data).any():
            raise InputError(
                "The mask lies only between the source images of this series (its gaps "
                "are wider than the working slices): no source image holds any of it."
            )
        raise InputError("The mask is empty: there is no hematoma to store in a segmentation.")
    sources = [with_type2_attributes(pydicom.dcmread(str(f), stop_before_pixels=True)) for f in files]
    segment = hd.seg.SegmentDescription(
        segment_number=1,
        segment_label=SEGMENT_LABEL,
        segmented_property_category=Code(*_CATEGORY),
        segmented_property_type=Code(*_HEMORRHAGE),
        algorithm_type=(
            hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC
            if automatic
            else hd.seg.SegmentAlgorithmTypeValues.SEMIAUTOMATIC
            if semiautomatic
            else hd.seg.SegmentAlgorithmTypeValues.MANUAL
        ),
        algorithm_identification=hd.AlgorithmIdentificationSequence(
            name=_lo(algorithm or "Hematoma Relay model"),
            version=__version__,
            family=codes.cid7162.ArtificialIntelligence,
        )
        if automatic or semiautomatic
        else None,
        tracking_uid=tracking_uid or hd.UID(),
        tracking_id="hematoma",
        display_color=hd.color.CIELabColor.from_rgb(220, 40, 40),  # red, as the application shows it
    )
    try:
        with warnings.catch_warnings():
            # highdicom warns about single-component person names ("REMOVED" when anonymised)
            warnings.simplefilter("ignore", UserWarning)
            seg = hd.seg.Segmentation(
                source_images=sources,
                pixel_array=pixels.astype(bool),
                segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
                segment_descriptions=[segment],
                series_instance_uid=series_uid or hd.UID(),
                series_number=9901,
                sop_instance_uid=sop_uid or hd.UID(),
                instance_number=1,
                manufacturer="Hematoma Relay",
                manufacturer_model_name="Hematoma Relay",
                software_versions=__version__,
                device_serial_number="0",
                series_description="Hematoma segmentation",
                content_description=_lo(description) or None,
                content_creator_name=_person(creator),
            )
    except (ValueError, TypeError, AttributeError) as exc:
        raise InputError(f"{ct_dir}: the segmentation could not be built over this series ({exc}).") from None
    return seg, SegResult(
        Path(),
        len(frames),
        int(np.count_nonzero(pixels.any(axis=(1, 2)))),
        int(np.count_nonzero(pixels)),
        tuple(slices_between_frames(mask, frames)),
    )


def _lo(text: str) -> str:
    """A DICOM LO value: at most 64 characters, no backslash."""
    text = " ".join(str(text).replace("\\", "/").split())
    return text if len(text) <= 64 else text[:61] + "..."


def _person(name: str) -> str | None:
    """A reader's name as a DICOM person name (family name component only)."""
    name = " ".join(str(name).replace("\\", "/").replace("^", " ").replace("=", " ").split())[:64]
    return name or None


def export_seg(
    ct_dir: str | Path, mask_path: str | Path, out: str | Path, *, automatic: bool = False, algorithm: str = ""
) -> SegResult:
    """``hemarelay export-seg``: a mask file on the series' working grid to a SEG."""
    reason = why_no_seg(Path(ct_dir))
    if reason:
        raise InputError(f"{ct_dir}: {reason}")
    ct = load_ct(ct_dir)
    mask = load_mask(mask_path, ct)
    if not same_grid(ct, mask):  # load_mask checks this; kept for masks passed in memory
        raise InputError(f"{mask_path}: the mask does not fit the series' grid.")
    if automatic:
        return write_seg(ct_dir, mask, out, automatic=True, algorithm=algorithm)
    return write_seg(ct_dir, mask, out, **seg_provenance(saved_mask_provenance(ct_dir, mask_path, mask)))


def seg_provenance(prov, creator: str = "") -> dict:
    """The :func:`write_seg` / :func:`build_seg` arguments that say where a mask came from,
    from its :class:`core.cases.mask_origin.MaskProvenance`: the one mapping for the
    application, ``export-seg`` and the PACS."""

    from ..cases.mask_origin import without_hash

    # ContentDescription holds 64 characters: the model's tensors hash goes with the algorithm's
    # name, so "model X, corrected by Y" fits
    short = without_hash(prov.source)
    return {
        "automatic": prov.automatic,
        "semiautomatic": prov.semiautomatic,
        "algorithm": prov.model,
        "description": short,
        "creator": creator,
    }


def saved_mask_provenance(ct_path: str | Path, mask_path: str | Path, mask: Volume):
    """A saved mask's provenance (core.cases.mask_origin): the origin recorded beside it and who
    marked its case reviewed (the status file of the case's folder)."""
    from ..cases.case_files import case_files, provenance_path
    from ..cases.mask_origin import mask_provenance, read_origin
    from ..cases.worklist import StatusStore, reviewed_by

    paths = case_files(ct_path)
    try:
        record = StatusStore(paths.folder).get(paths.case_id)
    except InputError:
        record = None
    origin = read_origin(provenance_path(mask_path), tuple(mask.shape))
    name = f"manual ({Path(mask_path).name})"
    return mask_provenance(origin, np.asarray(mask.data), mask.voxel_volume_ml, reviewed_by(record), name)


def read_seg_on_frames(seg_path: str | Path, source_uids: list[str]) -> np.ndarray:
    """A SEG's hematoma segment on the given source images, ``[frame, row, col]`` uint8
    (frames left out of the SEG are zeros): how the round trip is checked."""
    import highdicom as hd

    seg = hd.seg.segread(str(seg_path))
    arr = seg.get_pixels_by_source_instance(
        source_sop_instance_uids=source_uids, segment_numbers=[1], ignore_spatial_locations=True
    )
    return np.asarray(arr[..., 0], dtype=np.uint8)
