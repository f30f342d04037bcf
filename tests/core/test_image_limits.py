"""Issue 23's image row: bytes, not just voxels. A small NIfTI file may declare a huge
header extension (which nibabel reads whole, whatever it declares) or a volume whose
voxel count is within the limit but whose type (complex128) makes it 8.6 GB; both
are refused from the header, before nibabel reads anything."""

from __future__ import annotations

import gzip
import struct

import nibabel as nib
import numpy as np
import pytest

from core.errors import InputError
from core.io.nifti import read_nifti


def _header(shape: tuple[int, ...], datatype: int, bitpix: int, vox_offset: float, extension: bool) -> bytes:
    """A NIfTI-1 single-file header (348 bytes) and its 4 extension-flag bytes."""
    hdr = bytearray(348)
    struct.pack_into("<i", hdr, 0, 348)
    dims = [len(shape), *shape] + [1] * (7 - len(shape))
    struct.pack_into("<8h", hdr, 40, *dims)
    struct.pack_into("<hh", hdr, 70, datatype, bitpix)
    struct.pack_into("<8f", hdr, 76, 1, 1, 1, 1, 1, 1, 1, 1)
    struct.pack_into("<f", hdr, 108, vox_offset)
    struct.pack_into("<f", hdr, 112, 1.0)  # scl_slope
    hdr[344:348] = b"n+1\0"
    return bytes(hdr) + (b"\x01\0\0\0" if extension else b"\0\0\0\0")


@pytest.fixture
def no_nibabel(monkeypatch):
    """nibabel must not even open a refused file."""

    def refuse(*a, **k):
        raise AssertionError("nibabel read the file before it was checked")

    monkeypatch.setattr(nib, "load", refuse)


def test_a_huge_header_extension_is_refused_before_nibabel_reads_it(tmp_path, no_nibabel):
    # One extension declaring 512 MB while the header leaves it 16 bytes before the pixels.
    small = tmp_path / "ext.nii.gz"
    ext = struct.pack("<ii", 512 << 20, 6) + b"\0" * 8
    with gzip.open(small, "wb") as fh:
        fh.write(_header((4, 4, 4), 4, 16, 352 + 16, True) + ext + b"\0" * 128)
    with pytest.raises(InputError, match="extension declares 536.9 MB"):
        read_nifti(small)
    # Pixels 512 MB into the file (the extension really there, gzip shrinks it 1000:1).
    far = tmp_path / "far.nii.gz"
    with gzip.open(far, "wb") as fh:
        fh.write(_header((4, 4, 4), 4, 16, float(512 << 20), True))
    with pytest.raises(InputError, match="pixels 537 MB into the file"):
        read_nifti(far)


def test_non_ct_voxel_types_and_byte_sizes_are_refused(tmp_path, no_nibabel):
    big = tmp_path / "complex.nii.gz"  # 2^29 voxels: within the voxel limit, but complex128
    with gzip.open(big, "wb") as fh:
        fh.write(_header((1024, 1024, 512), 1792, 128, 352, False))
    with pytest.raises(InputError, match="complex128 voxels"):
        read_nifti(big)
    wide = tmp_path / "float64.nii.gz"  # 2^29 float64 voxels: 4.3 GB
    with gzip.open(wide, "wb") as fh:
        fh.write(_header((1024, 1024, 512), 64, 64, 352, False))
    with pytest.raises(InputError, match=r"4\.3 GB\)"):
        read_nifti(wide)


def test_an_ordinary_ct_still_reads(tmp_path):
    path = tmp_path / "ct.nii.gz"
    nib.save(nib.Nifti1Image(np.arange(60, dtype=np.int16).reshape(3, 4, 5), np.eye(4)), str(path))
    arr, affine = read_nifti(path)
    assert arr.shape == (3, 4, 5) and int(arr[2, 3, 4]) == 59
