"""The DICOM series a case came from: its frames, its study details, and the
one mapping of a working-grid mask back onto those frames.

A DICOM case is processed on a *working grid* (:func:`core.io.dicom.read_dicom_series`):
the source slices as they are when the series is regular, or resampled to
equally spaced slices along the slice normal when the gantry was tilted or the
gaps are uneven. Anything that must go back to the hospital's own images (a
DICOM SEG, which references each source frame) needs the mask *on the source
frames*. :func:`mask_on_source_frames` is the only place that does this: every
source pixel's centre is placed in world space from its own
ImagePositionPatient / ImageOrientationPatient / PixelSpacing, carried through
the inverse of the working grid's affine, and takes the label of the nearest
working voxel (labels are never blended). Pixels outside the working grid are 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..imaging.volume import Volume

# LPS (DICOM) to RAS (NIfTI/nibabel), as in core.io.dicom.
_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])
NOT_AVAILABLE = "not available"


@dataclass(frozen=True)
class SourceFrame:
    """One source image's geometry (LPS, as DICOM states it)."""

    file: Path
    sop_instance_uid: str
    position: np.ndarray  # ImagePositionPatient: centre of the first pixel, mm
    row_dir: np.ndarray  # direction of increasing column index (IOP[:3])
    col_dir: np.ndarray  # direction of increasing row index (IOP[3:])
    row_spacing: float  # PixelSpacing[0]: between rows, mm
    col_spacing: float  # PixelSpacing[1]: between columns, mm
    rows: int
    columns: int

    def pixel_to_ras(self) -> np.ndarray:
        """4x4 map of (column, row, 0, 1) to RAS mm."""
        m = np.eye(4)
        m[:3, 0] = _LPS_TO_RAS @ (self.row_dir * self.col_spacing)
        m[:3, 1] = _LPS_TO_RAS @ (self.col_dir * self.row_spacing)
        m[:3, 2] = _LPS_TO_RAS @ np.cross(self.row_dir, self.col_dir)
        m[:3, 3] = _LPS_TO_RAS @ self.position
        return m


@dataclass(frozen=True)
class StudyInfo:
    """What a filed report identifies the patient and study by (from the DICOM
    header of the case's series; never sent anywhere)."""

    patient_name: str = NOT_AVAILABLE
    patient_id: str = NOT_AVAILABLE
    accession_number: str = NOT_AVAILABLE
    study_date: str = NOT_AVAILABLE  # ISO 8601 when known
    series_description: str = NOT_AVAILABLE
    origin: str = "NIfTI file: patient details are not available (they are not stored in NIfTI)"

    @property
    def from_dicom(self) -> bool:
        return self.origin.startswith("DICOM")

    def rows(self) -> list[tuple[str, str]]:
        return [
            ("Patient name", self.patient_name),
            ("Patient ID", self.patient_id),
            ("Accession number", self.accession_number),
            ("Study date", self.study_date),
            ("Series", self.series_description),
        ]


def _pydicom():
    import pydicom

    return pydicom


def _text(ds, key: str) -> str:
    value = getattr(ds, key, None)
    text = str(value).strip() if value is not None else ""
    return text or NOT_AVAILABLE


def _iso_date(da: str) -> str:
    return f"{da[:4]}-{da[4:6]}-{da[6:8]}" if len(da) == 8 and da.isdigit() else da


def series_files(folder: Path) -> list[Path]:
    """The files of the CT series a DICOM folder opens as (the same choice as loading it)."""
    from .dicom import choose_ct_series

    series, _ = choose_ct_series(Path(folder))
    return [Path(f) for f in series.files]


def study_info(ct: Volume | Path | str) -> StudyInfo:
    """Patient and study details of a case: from its DICOM series when it came
    from one, else a record saying they are not available."""
    source = ct.source if isinstance(ct, Volume) else Path(ct)
    if source is None or not Path(source).is_dir():
        return StudyInfo()
    files = series_files(Path(source))
    try:
        ds = _pydicom().dcmread(str(files[0]), stop_before_pixels=True)
    except Exception as exc:  # noqa: BLE001 - pydicom raises several kinds for a bad header
        raise InputError(f"{files[0]}: cannot read the DICOM header ({exc}).") from None
    return StudyInfo(
        patient_name=_text(ds, "PatientName").replace("^", " ").strip(),
        patient_id=_text(ds, "PatientID"),
        accession_number=_text(ds, "AccessionNumber"),
        study_date=_iso_date(_text(ds, "StudyDate")),
        series_description=_text(ds, "SeriesDescription"),
        origin=f"DICOM series in {Path(source).name}",
    )


def read_frames(files: list[Path]) -> list[SourceFrame]:
    """Geometry of every source image (headers only)."""
    frames = []
    for f in files:
        try:
            ds = _pydicom().dcmread(str(f), stop_before_pixels=True)
            iop = np.array([float(x) for x in ds.ImageOrientationPatient])
            frames.append(
                SourceFrame(
                    Path(f),
                    str(ds.SOPInstanceUID),
                    np.array([float(x) for x in ds.ImagePositionPatient]),
                    iop[:3],
                    iop[3:],
                    float(ds.PixelSpacing[0]),
                    float(ds.PixelSpacing[1]),
                    int(ds.Rows),
                    int(ds.Columns),
                )
            )
        except (AttributeError, ValueError, TypeError, IndexError) as exc:
            raise InputError(
                f"{f}: the image has no usable position, orientation or pixel "
                f"spacing ({exc}); it cannot be referenced by a segmentation."
            ) from None
    return frames


def mask_on_source_frames(mask: Volume, frames: list[SourceFrame]) -> np.ndarray:
    """The mask (on the working grid) sampled on each source frame:
    ``[frame, row, column]`` uint8, frames in the order given."""
    to_voxel = np.linalg.inv(mask.affine)
    data = np.ascontiguousarray(mask.data != 0, dtype=np.uint8)
    out = (
        np.zeros((len(frames), frames[0].rows, frames[0].columns), np.uint8)
        if frames
        else np.zeros((0, 0, 0), np.uint8)
    )
    for n, fr in enumerate(frames):
        if (fr.rows, fr.columns) != out.shape[1:]:
            raise InputError(
                f"{fr.file}: {fr.rows}x{fr.columns} pixels, unlike the other images "
                f"of the series ({out.shape[1]}x{out.shape[2]})."
            )
        m = to_voxel @ fr.pixel_to_ras()  # (column, row, 0, 1) -> working voxel (i, j, k, 1)
        cols, rows = np.meshgrid(
            np.arange(fr.columns, dtype=np.float64), np.arange(fr.rows, dtype=np.float64)
        )  # [row, col] each
        # nearest working voxel; rounding first, so a frame lying exactly on the grid's last
        # slice (5.0000001 after float arithmetic) is not taken for one outside it
        ijk = [np.rint(m[a, 0] * cols + m[a, 1] * rows + m[a, 3]).astype(np.int64) for a in range(3)]
        inside = np.ones(ijk[0].shape, bool)
        for a in range(3):
            inside &= (ijk[a] >= 0) & (ijk[a] < data.shape[a])
        out[n][inside] = data[ijk[0][inside], ijk[1][inside], ijk[2][inside]]
    return out


def slices_between_frames(mask: Volume, frames: list[SourceFrame]) -> list[int]:
    """Working slices (axis 2) holding mask that no source frame samples: where the source
    gaps are wider than the working spacing, a mask drawn only there is not on any frame."""
    to_voxel = np.linalg.inv(mask.affine)
    sampled = set()
    for fr in frames:
        m = to_voxel @ fr.pixel_to_ras()
        centre = m @ np.array([(fr.columns - 1) / 2.0, (fr.rows - 1) / 2.0, 0.0, 1.0])
        sampled.add(int(np.rint(centre[2])))
    return [int(k) for k in np.flatnonzero(np.asarray(mask.data).any(axis=(0, 1))) if int(k) not in sampled]


def source_pixels(frames: list[SourceFrame]) -> np.ndarray:
    """The source images' stored values in HU, ``[frame, row, column]`` (for tests
    and checks: the mask on a frame can be compared with the frame itself)."""
    out = []
    for fr in frames:
        ds = _pydicom().dcmread(str(fr.file))
        arr = ds.pixel_array.astype(np.float32)
        out.append(arr * float(getattr(ds, "RescaleSlope", 1)) + float(getattr(ds, "RescaleIntercept", 0)))
    return np.stack(out)
