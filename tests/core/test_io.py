"""Reading CT (NIfTI, DICOM), masks on the CT grid, atomic writes, bad input."""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from core.errors import GeometryError, InputError, NotCTError
from core.imaging.volume import Volume
from core.io import atomic_path, load_ct, load_mask, save_mask

ROOT = Path(__file__).resolve().parents[2]


def _phantom(shape=(40, 40, 12), spacing=(0.5, 0.5, 5.0)) -> tuple[np.ndarray, np.ndarray]:
    """A skull ring with brain inside and air outside, in HU."""
    i, j = np.mgrid[: shape[0], : shape[1]]
    r = np.hypot(i - shape[0] / 2, j - shape[1] / 2)
    sl = np.where(r < 14, 35, np.where(r < 17, 700, -1000)).astype(np.int16)
    data = np.repeat(sl[:, :, None], shape[2], axis=2)
    return data, np.diag([*spacing, 1.0])


def _write(path: Path, data, affine) -> Path:
    nib.save(nib.Nifti1Image(data, affine), str(path))
    return path


# --- NIfTI -------------------------------------------------------------------


def test_load_nifti_phantom_keeps_hu_and_geometry(tmp_path):
    data, aff = _phantom()
    aff[:3, 3] = (-10, 20, 30)
    ct = load_ct(_write(tmp_path / "ct.nii.gz", data, aff))
    assert ct.data.dtype == np.int16
    np.testing.assert_array_equal(ct.data, data)
    np.testing.assert_allclose(ct.affine, aff)
    assert ct.spacing == pytest.approx((0.5, 0.5, 5.0))
    assert ct.voxel_volume_ml == pytest.approx(0.5 * 0.5 * 5 / 1000)


def test_rescale_slope_and_intercept_are_applied(tmp_path):
    data, aff = _phantom()
    img = nib.Nifti1Image((data + 1024).astype(np.uint16), aff)
    img.header.set_slope_inter(1.0, -1024.0)
    nib.save(img, str(tmp_path / "raw.nii"))
    ct = load_ct(tmp_path / "raw.nii")
    np.testing.assert_array_equal(ct.data, data)


def test_real_ctich_case(site_a):
    ct = load_ct(site_a / "train" / "ct_049.nii.gz")
    assert ct.shape == (512, 512, 39)
    assert ct.data.dtype == np.int16
    assert (ct.data.min(), ct.data.max()) == (-20, 100)
    assert ct.spacing[2] == pytest.approx(5.0)


def test_full_range_head_ct(data_root):
    ct = load_ct(data_root / "headct" / "cranium_ct.nii.gz")
    assert ct.data.min() <= -1000 and ct.data.max() > 2000
    assert ct.spacing == pytest.approx((0.957, 0.957, 1.5), abs=1e-3)


# --- DICOM -------------------------------------------------------------------


def test_tilted_dicom_is_resampled_and_matches_dcm2niix(data_root, tmp_path):
    """The GE series (18.5 degree tilt, 1.1-7 mm gaps) against dcm2niix's
    tilt-corrected, equalised output: same world geometry, same HU."""
    folder = data_root / "headct" / "dicom-ge-tilt"
    ct = load_ct(folder)
    assert "28 slices" in ct.description
    assert any("gantry tilt 18.5 degrees" in n for n in ct.notes)
    # orthogonal grid (no shear left), slices perpendicular to the tilted plane
    cols = ct.affine[:3, :3] / np.linalg.norm(ct.affine[:3, :3], axis=0)
    np.testing.assert_allclose(cols.T @ cols, np.eye(3), atol=1e-6)
    assert ct.spacing[:2] == pytest.approx((0.48828, 0.48828), abs=1e-4)

    dcm2niix = shutil.which("dcm2niix") or str(Path(sys.executable).parent / "dcm2niix")
    out = tmp_path / "d2n"
    out.mkdir()
    subprocess.run([dcm2niix, "-z", "y", "-f", "ref", "-o", str(out), str(folder)], check=True, capture_output=True)
    tilt = sorted(out.glob("ref_Tilt*.nii.gz"))
    assert tilt, f"dcm2niix wrote no tilt-corrected file: {sorted(p.name for p in out.iterdir())}"
    ref = nib.load(str(tilt[0]))
    # slice normals agree (up to sign)
    n_ours = cols[:, 2]
    ref_cols = ref.affine[:3, :3] / np.linalg.norm(ref.affine[:3, :3], axis=0)
    assert abs(n_ours @ ref_cols[:, 2]) == pytest.approx(1.0, abs=1e-4)
    # sample our volume at dcm2niix's voxel centres (world coordinates)
    r = np.asanyarray(ref.dataobj).astype(np.float32)
    idx = np.stack(np.meshgrid(*[np.arange(0, s, 4) for s in r.shape], indexing="ij"), -1).reshape(-1, 3)
    world = ref.affine @ np.c_[idx, np.ones(len(idx))].T
    ours = (np.linalg.inv(ct.affine) @ world)[:3]
    inside = np.all((ours >= 0) & (ours <= (np.array(ct.shape) - 1)[:, None]), axis=0)
    assert inside.mean() > 0.9  # same field of view
    ours_hu = ndimage.map_coordinates(ct.data.astype(np.float32), ours[:, inside], order=1)
    ref_hu = r[tuple(idx[inside].T)]
    head = (ref_hu > -500) | (ours_hu > -500)
    assert head.sum() > 10000
    assert np.corrcoef(ours_hu[head], ref_hu[head])[0, 1] > 0.99
    assert np.median(np.abs(ours_hu - ref_hu)[head]) < 5.0  # HU


def test_dicom_folder_with_several_series_picks_ct_with_most_slices(data_root, tmp_path):
    import pydicom

    src = sorted((data_root / "headct" / "dicom-ge-tilt").glob("*.dcm"))
    folder = tmp_path / "mixed"
    folder.mkdir()
    for f in src:
        shutil.copy(f, folder / f.name)
    for n, f in enumerate(src[:3]):  # a 3-slice second series (another UID)
        ds = pydicom.dcmread(str(f))
        ds.SeriesInstanceUID = "1.2.826.0.1.3680043.9.7.99"
        ds.SOPInstanceUID = f"1.2.826.0.1.3680043.9.7.99.{n}"
        ds.SeriesNumber = 99
        ds.save_as(str(folder / f"other_{n}.dcm"))
    ct = load_ct(folder)
    assert "28 slices" in ct.description and "among 2 series" in ct.description


def test_dicom_folder_without_ct_series_is_refused(data_root, tmp_path):
    import pydicom

    folder = tmp_path / "mr"
    folder.mkdir()
    for f in sorted((data_root / "headct" / "dicom-ge-tilt").glob("*.dcm"))[:4]:
        ds = pydicom.dcmread(str(f))
        ds.Modality = "MR"
        ds.save_as(str(folder / f.name))
    with pytest.raises(InputError, match="no CT series.*MR"):
        load_ct(folder)


# --- bad input ---------------------------------------------------------------


def test_truncated_nifti(tmp_path, site_a):
    raw = (site_a / "train" / "ct_049.nii.gz").read_bytes()
    bad = tmp_path / "ct_cut.nii.gz"
    bad.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(InputError, match="ct_cut.nii.gz: .*(truncated|corrupt|readable)"):
        load_ct(bad)


def test_not_an_image(tmp_path):
    bad = tmp_path / "notes.nii.gz"
    bad.write_bytes(gzip.compress(b"hello, this is a text file"))
    with pytest.raises(InputError, match="notes.nii.gz"):
        load_ct(bad)
    txt = tmp_path / "report.pdf"
    txt.write_bytes(b"%PDF-1.4")
    with pytest.raises(InputError, match="not a CT file"):
        load_ct(txt)


def test_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="empty"):
        load_ct(tmp_path / "empty")


def test_4d_volume(tmp_path):
    data, aff = _phantom()
    with pytest.raises(InputError, match="4-D"):
        load_ct(_write(tmp_path / "fmri.nii.gz", np.stack([data, data], axis=3), aff))


@pytest.mark.parametrize(
    "values,match",
    [
        ("zeros", "every voxel has the value 0"),
        ("mri", "lowest value is 17.*MRI"),
        ("normalised", "lowest value is 0.*normalised"),
    ],
)
def test_non_ct_intensities(tmp_path, values, match):
    data, aff = _phantom()
    if values == "zeros":
        arr = np.zeros_like(data)
    elif values == "mri":
        arr = (np.abs(data) // 2).astype(np.int16)  # 0..500, no negatives
    else:
        arr = ((data - data.min()) / np.ptp(data)).astype(np.float32)
    with pytest.raises(NotCTError, match=match):
        load_ct(_write(tmp_path / f"{values}.nii.gz", arr, aff))


# --- masks -------------------------------------------------------------------


def test_mask_round_trip_on_real_case_is_exact_and_atomic(site_a, tmp_path):
    ct_path = site_a / "train" / "ct_049.nii.gz"
    before = ct_path.stat().st_mtime_ns, (site_a / "train" / "mask_049.nii.gz").read_bytes()
    ct = load_ct(ct_path)
    mask = load_mask(site_a / "train" / "mask_049.nii.gz", ct)
    assert mask.data.dtype == np.uint8 and set(np.unique(mask.data)) <= {0, 1}
    out = save_mask(mask.data, ct, tmp_path / "mask_049.nii.gz")
    again = nib.load(str(out))
    assert again.get_data_dtype() == np.uint8
    np.testing.assert_allclose(again.affine, ct.affine)
    assert int(again.header["sform_code"]) == 1 and int(again.header["qform_code"]) == 1
    np.testing.assert_array_equal(np.asanyarray(again.dataobj), mask.data)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp left
    assert (os.stat(out).st_mode & 0o777) == 0o666 & ~_umask()
    assert before == (ct_path.stat().st_mtime_ns, (site_a / "train" / "mask_049.nii.gz").read_bytes())


def _umask() -> int:
    m = os.umask(0)
    os.umask(m)
    return m


def test_mask_with_wrong_shape_or_affine_names_both_geometries(tmp_path):
    data, aff = _phantom()
    ct = load_ct(_write(tmp_path / "ct.nii.gz", data, aff))
    small = _write(tmp_path / "m1.nii.gz", np.zeros((20, 20, 12), np.uint8), aff)
    with pytest.raises(GeometryError, match=r"Mask: 20x20x12 .* CT ct: 40x40x12"):
        load_mask(small, ct)
    moved = aff.copy()
    moved[:3, 3] = (5, 0, 0)
    shifted = _write(tmp_path / "m2.nii.gz", np.zeros(data.shape, np.uint8), moved)
    with pytest.raises(GeometryError, match=r"origin \(5.0, 0.0, 0.0\).*origin \(0.0, 0.0, 0.0\)"):
        load_mask(shifted, ct)


def test_save_mask_refuses_wrong_shape_and_the_ct_itself(tmp_path):
    data, aff = _phantom()
    ct_path = _write(tmp_path / "ct.nii.gz", data, aff)
    ct = load_ct(ct_path)
    with pytest.raises(GeometryError):
        save_mask(np.zeros((3, 3, 3)), ct, tmp_path / "m.nii.gz")
    with pytest.raises(InputError, match="over the CT"):
        save_mask(np.zeros(data.shape), ct, ct_path)
    assert load_ct(ct_path).data.tolist() == data.tolist()


def test_failed_write_leaves_nothing(tmp_path):
    target = tmp_path / "out.nii.gz"
    target.write_bytes(b"previous good version")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("crash mid-write")
    assert target.read_bytes() == b"previous good version"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.nii.gz"]


def test_volume_rejects_non_3d():
    with pytest.raises(ValueError):
        Volume(np.zeros((3, 3)), np.eye(4))


# --- size limits (issue 15): checked from the header before pixels are read ----


def test_a_nifti_header_asking_for_too_much_memory_is_refused_before_reading(tmp_path):
    import nibabel as nib

    hdr = nib.Nifti1Header()
    hdr.set_data_dtype(np.int16)
    hdr.set_data_shape((1024, 1024, 1024))  # 2 GB of int16 declared; the file holds 1 MB of zeros
    bomb = tmp_path / "bomb.nii.gz"
    bomb.write_bytes(gzip.compress(hdr.binaryblock + b"\0" * 4 + b"\0" * (1 << 20)))
    with pytest.raises(InputError, match=r"bomb.nii.gz: the NIfTI header declares 1024 x 1024 x 1024 voxels"):
        load_ct(bomb)
    hdr.set_data_shape((64, 64, 64))
    hdr["vox_offset"] = 4e9  # pixels 4 GB into a gzip stream
    far = tmp_path / "far.nii.gz"
    far.write_bytes(gzip.compress(hdr.binaryblock + b"\0" * 4))
    with pytest.raises(InputError, match="MB into the file"):
        load_ct(far)


def test_a_dicom_header_asking_for_too_much_memory_is_refused_before_reading(data_root, tmp_path):
    import pydicom

    folder = tmp_path / "huge"
    folder.mkdir()
    for f in sorted((data_root / "headct" / "dicom-ge-tilt").glob("*.dcm"))[:3]:
        ds = pydicom.dcmread(str(f))
        ds.Rows, ds.Columns = 60000, 60000  # 7 GB per slice declared
        ds.save_as(str(folder / f.name))
    with pytest.raises(InputError, match="declares 60000 x 60000"):
        load_ct(folder)
