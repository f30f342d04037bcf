"""Is this image a CT in Hounsfield units? Refuse what is not, with the reason."""

from __future__ import annotations

import numpy as np

from ..errors import NotCTError
from ..imaging.volume import Volume

# Air is about -1000 HU; CT-ICH's brain-window copies clip it at -20 HU. An image
# whose lowest value is above this has no air or fat: MRI, a normalised image,
# or raw scanner values without the DICOM rescale.
_MAX_LOWEST_HU = -15.0
_MIN_HIGHEST_HU = 30.0  # brain tissue is 20-45 HU; nothing above means no tissue
_MIN_SHAPE = 8  # pixels in-plane; anything smaller is not a scan


def check_ct(vol: Volume) -> Volume:
    """Return ``vol`` unchanged if it looks like a CT in HU, else raise NotCTError."""
    where = str(vol.source) if vol.source else "image"
    nx, ny, nz = vol.shape
    if min(nx, ny) < _MIN_SHAPE or nz < 1:
        raise NotCTError(f"{where}: {nx}x{ny}x{nz} voxels is too small to be a CT scan.")
    data = vol.data
    if data.dtype.kind not in "iuf":
        raise NotCTError(f"{where}: voxel type {data.dtype} is not a CT intensity type.")
    lo, hi = float(np.nanmin(data)), float(np.nanmax(data))
    if not np.isfinite(lo) or not np.isfinite(hi) or np.isnan(data).any():
        raise NotCTError(f"{where}: contains missing (NaN) or infinite values; not a valid CT.")
    if lo == hi:
        raise NotCTError(f"{where}: every voxel has the value {lo:g}; the image is blank, not a CT scan.")
    if lo > _MAX_LOWEST_HU:
        raise NotCTError(
            f"{where}: lowest value is {lo:g}, but a CT in Hounsfield units has air or fat below "
            f"{_MAX_LOWEST_HU:g} HU. This looks like an MRI, a normalised image or raw values "
            "without the DICOM rescale; open the original CT instead."
        )
    if hi < _MIN_HIGHEST_HU:
        raise NotCTError(
            f"{where}: highest value is {hi:g} HU; no brain tissue (20-45 HU) in it, "
            "so it is not a head CT in Hounsfield units."
        )
    return vol
