"""DICOM cases: the mask mapped back onto the source frames, the DICOM SEG round trip,
and the study details a report files (real GE series with an 18.5 degree gantry tilt)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest

from core.errors import InputError
from core.evaluation.metrics import dice
from core.io import load_ct, save_mask
from core.io.dicom_source import (
    NOT_AVAILABLE,
    mask_on_source_frames,
    read_frames,
    series_files,
    source_pixels,
    study_info,
)
from core.reports.seg import export_seg, read_seg_on_frames, why_no_seg, write_seg

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tilted(data_root):
    folder = data_root / "headct" / "dicom-ge-tilt"
    ct = load_ct(folder)
    assert ct.notes and "gantry tilt 18.5" in ct.notes[0]  # the hard case: resampled
    frames = read_frames(series_files(folder))
    return folder, ct, frames


def _blob(ct) -> np.ndarray:
    """A hematoma-like mask on the working grid: a 'bleed' inside the skull (soft tissue
    voxels in a ball of 30 mm around a point inside the head)."""
    ni, nj, nk = ct.shape
    c = np.array([ni // 2, nj // 2 + 40, nk // 2])
    ii, jj, kk = np.ogrid[:ni, :nj, :nk]
    sp = ct.spacing
    ball = (((ii - c[0]) * sp[0]) ** 2 + ((jj - c[1]) * sp[1]) ** 2 + ((kk - c[2]) * sp[2]) ** 2) < 30**2
    return (ball & (ct.data > 10) & (ct.data < 90)).astype(np.uint8)


def test_mask_on_source_frames_matches_the_source_images(tilted):
    """The same threshold taken on the working grid and mapped back, or taken on the
    source images directly, agrees (the working grid is a resampling of the frames)."""
    folder, ct, frames = tilted
    bone = ct.with_data((ct.data > 300).astype(np.uint8))
    on = mask_on_source_frames(bone, frames)
    src = source_pixels(frames) > 300
    assert on.shape == src.shape == (28, 512, 512)
    assert dice(on, src) > 0.95
    # the first and last source slices are kept as they are by the resampling
    assert dice(on[0], src[0]) > 0.97 and dice(on[-1], src[-1]) > 0.97


def test_regular_series_maps_back_voxel_for_voxel(tilted, tmp_path):
    """An untilted, evenly spaced series is stacked as is: the mapping is the identity
    (working voxel [i, j, k] is column i, row j of source frame k)."""
    folder, _, _ = tilted
    files = sorted(folder.glob("*.dcm"))[:6]
    first = pydicom.dcmread(files[0], stop_before_pixels=True)
    iop = np.array([float(x) for x in first.ImageOrientationPatient])
    normal = np.cross(iop[:3], iop[3:])
    p0 = np.array([float(x) for x in first.ImagePositionPatient])
    for k, f in enumerate(files):  # copies with straight, 5 mm stacking; the source is untouched
        ds = pydicom.dcmread(f)
        ds.ImagePositionPatient = [f"{v:.4f}" for v in p0 + 5.0 * k * normal]
        ds.save_as(tmp_path / f.name)
    ct = load_ct(tmp_path)
    assert not ct.notes and ct.shape[2] == 6
    mask = ct.with_data(_blob(ct) | (ct.data > 300).astype(np.uint8))
    frames = read_frames(series_files(tmp_path))
    on = mask_on_source_frames(mask, frames)
    order = np.argsort([fr.position @ normal for fr in frames])
    for k, n in enumerate(order):
        assert np.array_equal(on[n], mask.data[:, :, k].T)


def test_seg_round_trip_on_the_tilted_series(tilted, tmp_path):
    """Tilted GE series -> a mask -> SEG -> read back with highdicom: the same voxels
    on the source frames."""
    folder, ct, frames = tilted
    mask = ct.with_data(_blob(ct))
    assert mask.data.sum() > 1000
    expected = mask_on_source_frames(mask, frames)
    out = tmp_path / "seg.dcm"
    r = write_seg(folder, mask, out)
    assert r.n_frames == 28 and 0 < r.n_frames_with_mask < 28
    assert r.voxels_on_source == int(expected.sum())
    missed = set(r.slices_between_frames)  # the 7 mm gaps skip some 4 mm working slices
    assert missed and missed < set(np.flatnonzero(mask.data.any(axis=(0, 1))).tolist())
    assert "between the source images" in r.note()
    back = read_seg_on_frames(out, [f.sop_instance_uid for f in frames])
    assert back.shape == expected.shape and np.array_equal(back, expected)
    ds = pydicom.dcmread(out)
    assert ds.Modality == "SEG" and ds.SegmentationType == "BINARY"
    seg = ds.SegmentSequence[0]
    assert seg.SegmentLabel == "Hemorrhage"
    assert seg.SegmentedPropertyTypeCodeSequence[0].CodeValue == "50960005"
    src = pydicom.dcmread(frames[0].file, stop_before_pixels=True)
    assert ds.StudyInstanceUID == src.StudyInstanceUID
    assert ds.ReferencedSeriesSequence[0].SeriesInstanceUID == src.SeriesInstanceUID
    referenced = {x.ReferencedSOPInstanceUID for x in ds.ReferencedSeriesSequence[0].ReferencedInstanceSequence}
    assert referenced == {f.sop_instance_uid for f in frames}


def test_export_seg_command_and_refusals(tilted, tmp_path, site_a):
    folder, ct, _ = tilted
    mask_path = tmp_path / "mask.nii.gz"
    save_mask(_blob(ct), ct, mask_path)
    out = tmp_path / "out" / "seg.dcm"
    out.parent.mkdir()
    p = subprocess.run(
        [sys.executable, "-m", "core", "export-seg", str(folder), str(mask_path), "-o", str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr
    assert "SEG:" in p.stdout and out.is_file() and pydicom.dcmread(out).Modality == "SEG"
    # a NIfTI case: the reason, in plain words
    nifti = site_a / "test" / "ct_067.nii.gz"
    assert "DICOM series" in why_no_seg(nifti)
    with pytest.raises(InputError, match="NIfTI"):
        export_seg(nifti, site_a / "test" / "mask_067.nii.gz", tmp_path / "x.dcm")
    assert not (tmp_path / "x.dcm").exists()
    # an empty mask: nothing to store, nothing written
    with pytest.raises(InputError, match="empty"):
        write_seg(folder, ct.with_data(np.zeros(ct.shape, np.uint8)), tmp_path / "empty.dcm")
    assert not (tmp_path / "empty.dcm").exists()


def test_study_info_from_dicom_and_not_available_for_nifti(tilted, site_a):
    folder, ct, _ = tilted
    info = study_info(ct)
    ds = pydicom.dcmread(series_files(folder)[0], stop_before_pixels=True)
    assert info.from_dicom and info.patient_id == str(ds.PatientID)
    assert info.patient_name == str(ds.PatientName)
    assert info.accession_number == NOT_AVAILABLE  # absent in this anonymised series: said so
    nifti = study_info(site_a / "test" / "ct_067.nii.gz")
    assert not nifti.from_dicom and nifti.patient_name == NOT_AVAILABLE and "NIfTI" in nifti.origin


def test_the_working_grid_covers_every_source_pixel(tilted):
    """The resampled grid spans every shifted source slice: a full mask is full on every
    frame, and an empty one empty (no pixel falls outside or wraps around)."""
    _, ct, frames = tilted
    assert mask_on_source_frames(ct.with_data(np.ones(ct.shape, np.uint8)), frames).all()
    assert not mask_on_source_frames(ct.with_data(np.zeros(ct.shape, np.uint8)), frames).any()
