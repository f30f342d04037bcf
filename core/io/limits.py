"""How large an image this program reads, checked from the header before any pixel.

A NIfTI header or a DICOM series can declare any size, and gzip expands
1000:1, so a small file can ask for tens of GB. A head CT is at most a few
thousand pixels a side and a few hundred million voxels, of a CT's types
(8 to 32-bit integers, 32 or 64-bit floats); anything larger (in voxels or in
bytes) or of another type (complex, RGB) is refused with the declared size in
the message, before memory is allocated.

NIfTI files are checked here before nibabel opens them (:func:`check_nifti_file`):
nibabel reads the header's extensions whole, whatever size they declare, so the
header and each extension are read here first, a few bytes at a time.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from ..errors import InputError

MAX_SIDE = 4096  # pixels along any axis
MAX_VOXELS = 1 << 29  # 537 million voxels: 1 GB as int16, 2 GB as float32
MAX_IMAGE_BYTES = 2 << 30  # the pixels as stored
MAX_HEADER_BYTES = 16 << 20  # NIfTI vox_offset (header + extensions)
# NIfTI datatype codes a CT or a mask is stored in, and their bytes per voxel.
CT_DATATYPES = {2: 1, 4: 2, 8: 4, 16: 4, 64: 8, 256: 1, 512: 2, 768: 4}
_DATATYPE_NAMES = {1: "binary", 32: "complex64", 128: "RGB", 1024: "int64", 1280: "uint64", 1536: "float128",
                   1792: "complex128", 2048: "complex256", 2304: "RGBA"}  # fmt: skip


def check_image_size(where: Path | str, shape: tuple[int, ...], what: str = "image", itemsize: int = 0) -> None:
    """InputError when ``shape`` (from a header) is larger than a head CT can be, in
    voxels, or (given the bytes per voxel) in bytes."""
    dims = [int(s) for s in shape]
    voxels = 1
    for s in dims:
        voxels *= max(s, 0)
    size = " x ".join(str(s) for s in dims)
    if any(s > MAX_SIDE for s in dims) or voxels > MAX_VOXELS:
        raise InputError(
            f"{where}: the {what} declares {size} voxels ({voxels / 1e6:,.0f} million; "
            f"{voxels * 4 / 1e9:,.1f} GB as float32), more than a head CT can be (at most "
            f"{MAX_SIDE} pixels a side and {MAX_VOXELS / 1e6:,.0f} million voxels); it was not read."
        )
    if voxels * itemsize > MAX_IMAGE_BYTES:
        raise InputError(
            f"{where}: the {what} declares {size} voxels of {itemsize} bytes ({voxels * itemsize / 1e9:,.1f} GB), "
            f"more than a head CT can be (at most {MAX_IMAGE_BYTES / 1e9:,.1f} GB); it was not read."
        )


def check_pixel_type(where: Path | str, dtype: np.dtype | str, what: str = "image") -> None:
    """InputError unless a CT or mask could be stored as ``dtype`` (integers, floats)."""
    dt = np.dtype(dtype)
    if dt.kind not in "iuf" or dt.itemsize > 8 or (dt.kind in "iu" and dt.itemsize > 4):
        raise InputError(f"{where}: the {what} stores {dt.name} voxels, which no CT or mask is; it was not read.")


def _opener(path: Path):
    with open(path, "rb") as fh:
        magic = fh.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")


def check_nifti_file(path: Path) -> None:
    """Read a NIfTI-1 or NIfTI-2 header and its extensions' sizes without nibabel, and
    refuse (InputError) what a head CT never is: pixels starting more than
    :data:`MAX_HEADER_BYTES` into the file, an extension larger than the room the header
    leaves for it, a non-CT voxel type, or more voxels or bytes than a CT has."""
    try:
        with _opener(path) as fh:
            head = fh.read(540)
            endian, version = _nifti_version(head)
            if version is None:
                raise InputError(f"{path}: not a readable NIfTI image (no NIfTI-1 or NIfTI-2 header).")
            if version == 1:
                dims = struct.unpack(endian + "8h", head[40:56])
                datatype = struct.unpack(endian + "h", head[70:72])[0]
                vox_offset = struct.unpack(endian + "f", head[108:112])[0]
                header_end = 348
            else:
                datatype = struct.unpack(endian + "h", head[12:14])[0]
                dims = struct.unpack(endian + "8q", head[16:80])
                vox_offset = struct.unpack(endian + "q", head[168:176])[0]
                header_end = 540
            if not 0 <= vox_offset <= MAX_HEADER_BYTES:  # NaN fails this too
                raise InputError(
                    f"{path}: the NIfTI header puts the pixels {float(vox_offset) / 1e6:,.0f} MB into the file "
                    "(header extensions that large are not a CT); it was not read."
                )
            if datatype not in CT_DATATYPES:
                kind = _DATATYPE_NAMES.get(datatype, f"type code {datatype}")
                raise InputError(
                    f"{path}: the NIfTI image stores {kind} voxels, which no CT or mask is; it was not read."
                )
            n = max(0, min(int(dims[0]), 7))
            check_image_size(path, tuple(int(d) for d in dims[1 : n + 1]), "NIfTI header", CT_DATATYPES[datatype])
            _check_extensions(path, fh, head, header_end, int(vox_offset), endian)
    except (OSError, EOFError, zlib.error, struct.error) as exc:
        raise InputError(f"{path}: not a readable NIfTI image ({str(exc)[:120] or type(exc).__name__}).") from None


def _nifti_version(head: bytes) -> tuple[str, int | None]:
    for endian in ("<", ">"):
        if len(head) >= 4:
            size = struct.unpack(endian + "i", head[:4])[0]
            if size == 348 and len(head) >= 348:
                return endian, 1
            if size == 540 and len(head) >= 540:
                return endian, 2
    return "<", None


def _check_extensions(path: Path, fh, head: bytes, header_end: int, vox_offset: int, endian: str) -> None:
    """Walk the extensions (8 bytes of size and code each) between the header and the
    pixels, reading only their sizes; each must fit in the room left before the pixels."""
    fh.seek(header_end)
    flag = fh.read(4)
    if len(flag) < 4 or flag[0] == 0:
        return
    at = header_end + 4
    end = vox_offset if vox_offset > 0 else MAX_HEADER_BYTES  # a pair's header: to its end, bounded
    while end - at >= 16:
        ext = fh.read(8)
        if len(ext) < 8:
            return
        esize = struct.unpack(endian + "i", ext[:4])[0]
        if esize < 16 or esize > end - at:
            raise InputError(
                f"{path}: a NIfTI header extension declares {esize / 1e6:,.1f} MB, more than the "
                f"{(end - at) / 1e6:,.1f} MB the header leaves for it; it was not read."
            )
        fh.seek(at + esize)  # in a .gz file this decompresses at most MAX_HEADER_BYTES in all
        at += esize
