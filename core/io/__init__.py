"""Reading CT scans and reading/writing hematoma masks.

``load_ct`` takes a NIfTI file or a DICOM folder and returns a validated
:class:`~core.imaging.volume.Volume` in HU. Masks are uint8 0/1 NIfTI on exactly the
CT's grid; writing is atomic and never touches the CT file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import GeometryError, InputError
from ..imaging.volume import Volume, same_grid
from .atomic import atomic_path, atomic_write_bytes, atomic_write_text
from .dicom import read_dicom_series
from .nifti import is_nifti, read_nifti, save_volume, write_nifti
from .validate import check_ct

__all__ = [
    "load_ct",
    "load_mask",
    "save_mask",
    "save_volume",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "check_ct",
    "mask_geometry_error",
]


def load_ct(path: str | Path) -> Volume:
    """A CT scan in HU from a ``.nii``/``.nii.gz`` file or a DICOM folder."""
    path = Path(path).expanduser()
    if path.is_dir():
        return check_ct(read_dicom_series(path))
    if not path.exists():
        raise InputError(f"{path}: file not found.")
    if not is_nifti(path):
        raise InputError(
            f"{path}: not a CT file this program reads; open a .nii/.nii.gz file or a folder of DICOM slices."
        )
    arr, affine = read_nifti(path)
    if arr.dtype.kind == "f":
        # Whole-number float data (nibabel applies scl_slope) is stored compactly.
        if arr.size and np.all(np.mod(arr, 1) == 0) and arr.min() >= -32768 and arr.max() <= 32767:
            arr = arr.astype(np.int16)
        else:
            arr = arr.astype(np.float32)
    elif arr.dtype != np.int16:
        if arr.dtype.kind in "iu" and arr.size and arr.min() >= -32768 and arr.max() <= 32767:
            arr = arr.astype(np.int16)
        elif arr.dtype.kind in "iub":
            arr = arr.astype(np.float32)
    return check_ct(Volume(data=np.ascontiguousarray(arr), affine=affine, source=path.resolve()))


def mask_geometry_error(mask_path: Path, mask_shape, mask_affine, ct: Volume) -> GeometryError:
    mask_vol = Volume(np.empty(mask_shape, dtype=np.uint8), mask_affine)
    return GeometryError(
        f"{mask_path}: the mask does not fit its CT. Mask: {mask_vol.geometry_text()}; "
        f"CT {ct.name}: {ct.geometry_text()}."
    )


def load_mask(path: str | Path, ct: Volume) -> Volume:
    """A hematoma mask (uint8 0/1) that must lie on exactly ``ct``'s grid."""
    path = Path(path).expanduser()
    if not path.exists():
        raise InputError(f"{path}: mask file not found.")
    arr, affine = read_nifti(path)
    if tuple(arr.shape) != ct.shape or not same_grid(Volume(np.empty(arr.shape, np.uint8), affine), ct):
        raise mask_geometry_error(path, arr.shape, affine, ct)
    if arr.dtype.kind == "f" and not np.all(np.mod(arr, 1) == 0):
        raise InputError(f"{path}: holds fractional values (a probability map?); a mask must be 0 and 1.")
    if arr.min() < 0:
        raise InputError(f"{path}: holds negative values; a mask must be 0 and 1.")
    return Volume(data=(arr != 0).astype(np.uint8), affine=ct.affine, source=path.resolve())


def save_mask(data: np.ndarray, ct: Volume, path: str | Path) -> Path:
    """Write ``data`` (nonzero = hematoma) as uint8 NIfTI on ``ct``'s grid, atomically."""
    path = Path(path).expanduser()
    if tuple(data.shape) != ct.shape:
        raise GeometryError(
            f"{path}: mask of shape {tuple(data.shape)} does not fit CT {ct.name} ({ct.geometry_text()})."
        )
    if ct.source is not None and path.resolve() == Path(ct.source).resolve():
        raise InputError(f"{path}: refusing to write a mask over the CT scan itself.")
    return write_nifti((np.asarray(data) != 0).astype(np.uint8), ct.affine, path)
