"""NIfTI (.nii / .nii.gz) reading and writing through nibabel."""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..cases.case_files import is_nifti_name
from ..errors import InputError
from ..imaging.volume import Volume
from .atomic import atomic_path
from .limits import check_image_size, check_nifti_file, check_pixel_type

if TYPE_CHECKING:
    import nibabel as nib


def is_nifti(path: Path) -> bool:
    return is_nifti_name(path.name)


def read_nifti(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Return (array with scaling applied, affine); squeeze a trailing length-1 4th axis.

    Every failure to read becomes an InputError that names the file.
    """
    if not Path(path).is_file():
        raise InputError(f"{path}: file not found.")
    check_nifti_file(Path(path))  # header, extensions, type and size: before nibabel reads any of it
    import nibabel as nib  # on first use: nibabel (with pydicom, requests) costs start-up time

    try:
        img = nib.load(str(path))
    except FileNotFoundError:
        raise InputError(f"{path}: file not found.") from None
    except Exception as exc:  # noqa: BLE001 - nibabel raises many types for non-images
        raise InputError(f"{path}: not a readable NIfTI image ({_short(exc)}).") from None
    shape = img.shape
    check_pixel_type(path, img.get_data_dtype(), "NIfTI image")
    check_image_size(path, tuple(shape), "NIfTI header", img.get_data_dtype().itemsize)
    if len(shape) == 4 and shape[3] == 1:
        pass
    elif len(shape) == 4:
        raise InputError(
            f"{path}: is a 4-D image ({shape[3]} volumes of "
            f"{shape[0]}x{shape[1]}x{shape[2]}); a CT scan must be one 3-D volume."
        )
    elif len(shape) != 3:
        raise InputError(f"{path}: has {len(shape)} dimensions {tuple(shape)}; a CT scan must be a 3-D volume.")
    try:
        raw = np.asanyarray(img.dataobj)
    except (EOFError, zlib.error, OSError, ValueError) as exc:
        raise InputError(f"{path}: the file is truncated or corrupt ({_short(exc)}).") from None
    arr = raw.reshape(shape[:3])
    affine = np.asarray(img.affine, dtype=np.float64)
    if not np.all(np.isfinite(affine)) or abs(np.linalg.det(affine[:3, :3])) < 1e-9:
        raise InputError(f"{path}: its voxel-to-world geometry (affine) is invalid.")
    return arr, affine


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:160]


def nifti_image(data: np.ndarray, affine: np.ndarray) -> "nib.Nifti1Image":
    """A NIfTI image whose sform and qform both carry ``affine`` (code 1,
    scanner), so ITK-SNAP and 3D Slicer put it exactly over its CT."""
    import nibabel as nib

    img = nib.Nifti1Image(data, affine)
    img.header.set_data_dtype(data.dtype)
    img.set_sform(affine, code=1)
    img.set_qform(affine, code=1)
    img.header.set_xyzt_units("mm", "sec")
    return img


def write_nifti(data: np.ndarray, affine: np.ndarray, path: Path) -> Path:
    """Atomic write; the extension chooses gzip."""
    path = Path(path)
    if not is_nifti(path):
        raise InputError(f"{path}: output must end in .nii or .nii.gz.")
    with atomic_path(path) as tmp:
        nifti_image(data, affine).to_filename(str(tmp))
    return path


def save_volume(vol: Volume, path: str | Path) -> Path:
    return write_nifti(vol.data, vol.affine, Path(path))
