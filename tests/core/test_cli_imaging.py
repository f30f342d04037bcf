"""`hemarelay brain` end to end, and bad input: one line, exit 2, no output file."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


def hemarelay(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "core", *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300
    )


def test_brain_command_on_real_dicom(data_root, tmp_path):
    out = tmp_path / "brain.nii.gz"
    r = hemarelay("brain", str(data_root / "headct" / "dicom-ge-tilt"), "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert "gantry tilt 18.5" in r.stdout and "brain" in r.stdout
    img = nib.load(str(out))
    assert img.get_data_dtype() == np.uint8 and img.shape == (512, 611, 37)
    ml = np.asanyarray(img.dataobj).sum() * abs(np.linalg.det(img.affine[:3, :3])) / 1000
    assert 1000 < ml < 2100


def _bad_inputs(tmp_path: Path, data_root: Path) -> dict[str, Path]:
    aff = np.diag([0.5, 0.5, 5, 1.0])
    raw = (data_root / "ctich" / "site-a" / "train" / "ct_049.nii.gz").read_bytes()
    (tmp_path / "truncated.nii.gz").write_bytes(raw[: len(raw) // 3])
    (tmp_path / "text.nii.gz").write_bytes(gzip.compress(b"not an image"))
    (tmp_path / "empty").mkdir()
    (tmp_path / "nodicom").mkdir()
    (tmp_path / "nodicom" / "readme.txt").write_text("no images here")
    nib.save(nib.Nifti1Image(np.zeros((32, 32, 8, 3), np.int16), aff), str(tmp_path / "fourd.nii.gz"))
    nib.save(nib.Nifti1Image(np.zeros((32, 32, 8), np.int16), aff), str(tmp_path / "zeros.nii.gz"))
    mri = np.random.default_rng(0).integers(0, 900, (32, 32, 8)).astype(np.int16)
    nib.save(nib.Nifti1Image(mri, aff), str(tmp_path / "mri.nii.gz"))
    return {
        "truncated": tmp_path / "truncated.nii.gz",
        "not an image": tmp_path / "text.nii.gz",
        "empty": tmp_path / "empty",
        "no DICOM": tmp_path / "nodicom",
        "4-D": tmp_path / "fourd.nii.gz",
        "every voxel": tmp_path / "zeros.nii.gz",
        "MRI": tmp_path / "mri.nii.gz",
    }


def test_bad_inputs_exit_2_with_one_line_and_no_output(data_root, tmp_path):
    for expect, path in _bad_inputs(tmp_path, data_root).items():
        out = tmp_path / f"out_{path.name}.nii.gz"
        r = hemarelay("brain", str(path), "-o", str(out))
        assert r.returncode == 2, (expect, r.stdout, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
        assert str(path.name) in lines[0] and (
            expect.lower() in lines[0].lower()
            or expect == "truncated"
            and "corrupt" in lines[0]
            or expect == "not an image"
            and "readable" in lines[0]
            or expect == "no DICOM"
            and "no DICOM" in lines[0]
        ), lines[0]
        assert not out.exists()
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out_")]


def test_mask_with_wrong_geometry_via_report_is_refused(site_a, tmp_path):
    """A mask of another case (other slice count) beside a CT."""
    ct = site_a / "train" / "ct_049.nii.gz"  # 39 slices
    other = site_a / "train" / "mask_050.nii.gz"
    if nib.load(str(other)).shape == nib.load(str(ct)).shape:
        pytest.skip("cases share a grid")
    out = tmp_path / "r.csv"
    r = hemarelay("report", str(ct), "--mask", str(other), "--csv", str(out))
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("hemarelay: error:")]
    assert r.returncode == 2 and len(errors) == 1 and "Traceback" not in r.stderr, r.stderr
    assert "does not fit" in errors[0] and "512x512x39" in errors[0] and not out.exists()
