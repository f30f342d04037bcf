"""DICOM series (a folder of slices) into a :class:`Volume`, via SimpleITK.

Slices are read one by one with their own geometry (ImagePositionPatient,
ImageOrientationPatient). When the slice positions do not lie on a line
perpendicular to the slices (gantry tilt) or are unevenly spaced, plain
stacking would give wrong geometry, so the series is resampled onto a regular
grid in the frame of the slices: rows and columns stay where they are, slices
are equally spaced along the true slice normal, and each output slice is a
linear blend of the two nearest source slices, each shifted in-plane to its
true position. This is what dcm2niix's tilt correction with slice
equalisation does; a test compares the two.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from ..errors import GeometryError, InputError
from ..imaging.volume import Volume
from .limits import check_image_size

log = logging.getLogger(__name__)

# The pixel types a CT slice is stored in (SimpleITK's names) and their bytes per pixel.
_PIXEL_BYTES = {
    "sitkUInt8": 1,
    "sitkInt8": 1,
    "sitkUInt16": 2,
    "sitkInt16": 2,
    "sitkUInt32": 4,
    "sitkInt32": 4,
    "sitkFloat32": 4,
    "sitkFloat64": 8,
}
# LPS (DICOM/ITK world) to RAS (NIfTI/nibabel world).
_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
# Output slices farther than this from any source slice would be invented, not
# interpolated: refuse the series instead (mm).
MAX_GAP_MM = 12.0
_AIR_HU = -1024.0


def _pixel_bytes(sitk) -> dict[int, int]:
    """:data:`_PIXEL_BYTES` by SimpleITK pixel id (SimpleITK loads on first use)."""
    return {getattr(sitk, name): n for name, n in _PIXEL_BYTES.items()}


@dataclass(frozen=True)
class SeriesInfo:
    uid: str
    files: tuple[str, ...]
    modality: str
    description: str
    number: str


def _tag(reader, key: str) -> str:  # a SimpleITK ImageFileReader
    return reader.GetMetaData(key).strip() if reader.HasMetaDataKey(key) else ""


def list_series(folder: Path) -> list[SeriesInfo]:
    """Every DICOM series in ``folder`` (not recursive) with its modality."""
    import SimpleITK as sitk  # on first use: only DICOM folders need it

    sitk.ProcessObject_SetGlobalWarningDisplay(False)
    try:
        uids = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder))
    except RuntimeError:
        uids = ()
    out = []
    reader = sitk.ImageFileReader()
    for uid in uids:
        files = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), uid)
        if not files:
            continue
        reader.SetFileName(files[0])
        try:
            reader.ReadImageInformation()
        except RuntimeError:
            continue
        out.append(
            SeriesInfo(
                uid,
                tuple(files),
                _tag(reader, "0008|0060").upper(),
                _tag(reader, "0008|103e"),
                _tag(reader, "0020|0011"),
            )
        )
    return out


def choose_ct_series(folder: Path) -> tuple[SeriesInfo, str]:
    """The CT series with most slices, and a sentence saying which one was chosen."""
    if not any(folder.iterdir()):
        raise InputError(f"{folder}: the folder is empty; expected the DICOM files of one CT series.")
    series = list_series(folder)
    if not series:
        raise InputError(f"{folder}: no DICOM images found in this folder.")
    cts = [s for s in series if s.modality == "CT"]
    if not cts:
        found = ", ".join(sorted({s.modality or "unknown" for s in series}))
        raise InputError(f"{folder}: no CT series in this DICOM folder (found modality {found}).")
    best = max(cts, key=lambda s: len(s.files))
    label = best.description or "(no description)"
    text = f"DICOM series {best.number or '?'} '{label}', {len(best.files)} slices"
    if len(series) > 1:
        text += f"; chosen as the CT series with most slices among {len(series)} series"
    return best, text


@dataclass(frozen=True)
class _Slice:
    pixels: np.ndarray  # [row, col] HU float32
    position: np.ndarray  # LPS mm of pixel (0, 0)


def _read_slices(series: SeriesInfo) -> tuple[list[_Slice], np.ndarray, np.ndarray, tuple[float, float]]:
    """Read each file; return slices, row dir, col dir (LPS) and (col, row) spacing."""
    import SimpleITK as sitk

    slices = []
    header = sitk.ImageFileReader()
    row_dir = col_dir = None
    spacing = None
    for f in series.files:
        header.SetFileName(f)
        try:  # the declared size first: a header can ask for any amount of memory
            header.ReadImageInformation()
        except RuntimeError as exc:
            raise InputError(f"{f}: unreadable DICOM slice ({str(exc).splitlines()[0][:120]}).") from None
        size = header.GetSize()
        pixel = _pixel_bytes(sitk).get(header.GetPixelID()) if header.GetNumberOfComponents() == 1 else None
        if pixel is None:  # colour, vectors, complex numbers: not a CT
            raise InputError(
                f"{f}: the DICOM slice stores {header.GetNumberOfComponents()} component(s) of "
                f"{sitk.GetPixelIDValueAsString(header.GetPixelID())} per pixel, which no CT does; it was not read."
            )
        check_image_size(f, tuple(size), "DICOM slice", pixel)
        check_image_size(series.files[0], (size[0], size[1], len(series.files)), "DICOM series", pixel)
        try:
            img = sitk.ReadImage(f)  # applies rescale slope/intercept
        except RuntimeError as exc:
            raise InputError(f"{f}: unreadable DICOM slice ({str(exc).splitlines()[0][:120]}).") from None
        if img.GetDimension() == 3 and img.GetSize()[2] != 1:
            raise InputError(f"{f}: multi-frame DICOM is not supported; export the series as single slices.")
        d = np.array(img.GetDirection(), dtype=np.float64).reshape(img.GetDimension(), img.GetDimension())
        r, c = d[:3, 0], d[:3, 1]
        sp = img.GetSpacing()[:2]
        if row_dir is None:
            row_dir, col_dir, spacing = r, c, sp
        elif not (
            np.allclose(r, row_dir, atol=1e-4)
            and np.allclose(c, col_dir, atol=1e-4)
            and np.allclose(sp, spacing, atol=1e-4)
        ):
            raise GeometryError(
                f"{f}: slices of this series have different orientations or pixel "
                "sizes (a localizer mixed in?); cannot build one volume."
            )
        arr = sitk.GetArrayFromImage(img).reshape(img.GetSize()[1], img.GetSize()[0])
        slices.append(_Slice(arr.astype(np.float32), np.array(img.GetOrigin()[:3], dtype=np.float64)))
    assert row_dir is not None and col_dir is not None and spacing is not None
    return slices, row_dir, col_dir, (float(spacing[0]), float(spacing[1]))


def read_dicom_series(folder: Path) -> Volume:
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: folder not found.")
    series, description = choose_ct_series(folder)
    slices, r, c, (sx, sy) = _read_slices(series)
    if len(slices) < 2:
        raise InputError(f"{folder}: the CT series has a single slice; a volume needs several.")
    n = np.cross(r, c)
    n /= np.linalg.norm(n)
    # Coordinates of each slice's first pixel in the slice frame (r, c, n).
    uvw = np.array([[s.position @ r, s.position @ c, s.position @ n] for s in slices])
    order = np.argsort(uvw[:, 2])
    slices = [slices[i] for i in order]
    uvw = uvw[order]
    gaps = np.diff(uvw[:, 2])
    if np.any(gaps < 1e-3):
        raise GeometryError(
            f"{folder}: two slices share the same position; the series has "
            "duplicates or several acquisitions. Export one acquisition only."
        )
    shift_u = uvw[:, 0] - uvw[0, 0]
    shift_v = uvw[:, 1] - uvw[0, 1]
    in_plane_ok = np.allclose(shift_u, 0, atol=0.01 * sx) and np.allclose(shift_v, 0, atol=0.01 * sy)
    even = np.allclose(gaps, np.median(gaps), rtol=0.01, atol=0.01)
    notes: list[str] = []
    if in_plane_ok and even:
        data = np.stack([s.pixels.T for s in slices], axis=2)  # [col=i, row=j, slice=k]
        origin = slices[0].position
        dz = float(np.median(gaps))
    else:
        if gaps.max() > MAX_GAP_MM:
            raise GeometryError(
                f"{folder}: slices are up to {gaps.max():.1f} mm apart; a regular "
                f"grid would need invented slices (limit {MAX_GAP_MM} mm)."
            )
        data, origin, dz = _resample_to_regular(slices, uvw, r, c, n, sx, sy)
        tilt = np.degrees(np.arccos(np.clip(abs(_unit(slices[-1].position - slices[0].position) @ n), -1, 1)))
        notes.append(
            f"Resampled to a regular grid: gantry tilt {tilt:.1f} degrees, slice gaps "
            f"{gaps.min():.2f} to {gaps.max():.2f} mm, now {data.shape[2]} slices of {dz:.2f} mm."
        )
        log.info("%s: %s", folder, notes[-1])
    affine_lps = np.eye(4)
    affine_lps[:3, 0] = r * sx
    affine_lps[:3, 1] = c * sy
    affine_lps[:3, 2] = n * dz
    affine_lps[:3, 3] = origin
    data = _as_hu_dtype(data)
    return Volume(
        data=data, affine=_LPS_TO_RAS @ affine_lps, source=folder, description=description, notes=tuple(notes)
    )


def slices_where(slices: list) -> str:
    return f"the DICOM series ({len(slices)} slices)"


def _unit(v: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(v)
    return v / norm if norm else v


def _resample_to_regular(slices: list[_Slice], uvw: np.ndarray, r, c, n, sx: float, sy: float):
    """Equally spaced slices along n covering all source slices' footprints."""
    gaps = np.diff(uvw[:, 2])
    dz = float(np.median(gaps))
    w0, w1 = uvw[0, 2], uvw[-1, 2]
    n_out = int(round((w1 - w0) / dz)) + 1
    dz = (w1 - w0) / (n_out - 1)  # exact end points, so first and last slices are kept as is
    # The output in-plane grid spans every shifted slice: offsets in pixels.
    off_i = (uvw[:, 0] - uvw[:, 0].min()) / sx
    off_j = (uvw[:, 1] - uvw[:, 1].min()) / sy
    rows, cols = slices[0].pixels.shape
    ni = cols + int(np.ceil(off_i.max() - 1e-6))
    nj = rows + int(np.ceil(off_j.max() - 1e-6))
    # Slice positions come from the headers too: the grid they ask for is checked before allocation.
    check_image_size(slices_where(slices), (ni, nj, n_out), "regular grid for this series")
    out = np.empty((ni, nj, n_out), dtype=np.float32)
    ii, jj = np.meshgrid(np.arange(ni, dtype=np.float32), np.arange(nj, dtype=np.float32), indexing="ij")
    cache: dict[int, np.ndarray] = {}

    def placed(k: int) -> np.ndarray:
        # source slice k resampled onto the output in-plane grid ([i, j] order)
        if k not in cache:
            src = slices[k].pixels.T  # [col, row]
            coords = np.stack([ii - off_i[k], jj - off_j[k]])
            if len(cache) > 2:
                cache.clear()
            cache[k] = ndimage.map_coordinates(src, coords, order=1, mode="constant", cval=_AIR_HU)
        return cache[k]

    for z in range(n_out):
        w = w0 + z * dz
        k = int(np.clip(np.searchsorted(uvw[:, 2], w, side="right") - 1, 0, len(slices) - 2))
        t = float(np.clip((w - uvw[k, 2]) / (uvw[k + 1, 2] - uvw[k, 2]), 0.0, 1.0))
        out[:, :, z] = (1 - t) * placed(k) + t * placed(k + 1) if t > 0 else placed(k)
    origin = (
        slices[0].position
        - (slices[0].position @ r - uvw[:, 0].min()) * r
        - (slices[0].position @ c - uvw[:, 1].min()) * c
    )
    return out, origin, dz


def _as_hu_dtype(data: np.ndarray) -> np.ndarray:
    """int16 when the values are whole numbers in range, else float32."""
    if np.all(np.mod(data, 1) == 0) and data.min() >= -32768 and data.max() <= 32767:
        return data.astype(np.int16)
    return data.astype(np.float32)
