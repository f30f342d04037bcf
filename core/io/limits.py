"""How large an image this program reads, checked from the header before any pixel.

A NIfTI header or a DICOM series can declare any size, and gzip expands
1000:1, so a small file can ask for tens of GB. A head CT is at most a few
thousand pixels a side and a few hundred million voxels; anything larger is
refused with the declared size in the message, before memory is allocated.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError

MAX_SIDE = 4096  # pixels along any axis
MAX_VOXELS = 1 << 29  # 537 million voxels: 1 GB as int16, 2 GB as float32
MAX_HEADER_BYTES = 16 << 20  # NIfTI vox_offset (header + extensions)


def check_image_size(where: Path | str, shape: tuple[int, ...], what: str = "image") -> None:
    """InputError when ``shape`` (from a header) is larger than a head CT can be."""
    dims = [int(s) for s in shape]
    voxels = 1
    for s in dims:
        voxels *= max(s, 0)
    if any(s > MAX_SIDE for s in dims) or voxels > MAX_VOXELS:
        size = " x ".join(str(s) for s in dims)
        raise InputError(
            f"{where}: the {what} declares {size} voxels ({voxels / 1e6:,.0f} million; "
            f"{voxels * 4 / 1e9:,.1f} GB as float32), more than a head CT can be (at most "
            f"{MAX_SIDE} pixels a side and {MAX_VOXELS / 1e6:,.0f} million voxels); it was not read."
        )
