"""Agreement between two masks (hemarelay compare) on real CT-ICH cases."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from core.errors import GeometryError
from core.io import load_ct, load_mask, save_mask
from core.reports.agreement import compare_files, compare_volumes, hd95_mm

ROOT = Path(__file__).resolve().parents[2]


def test_hd95_of_a_shifted_ball_is_the_shift_in_mm():
    a = np.zeros((40, 40, 20), bool)
    ii, jj, kk = np.ogrid[:40, :40, :20]
    a |= ((ii - 20) ** 2 + (jj - 20) ** 2 + ((kk - 10) * 2) ** 2) < 100
    b = np.roll(a, 3, axis=0)  # 3 voxels of 0.5 mm along i
    hd = hd95_mm(a, b, (0.5, 0.5, 1.0))
    assert 1.0 <= hd <= 1.5 + 1e-9  # at most the shift (1.5 mm); the sides move less
    assert hd95_mm(a, a, (0.5, 0.5, 1.0)) == 0.0


def test_compare_real_mask_with_a_grown_copy(site_a, tmp_path):
    ct_path, mask_path = site_a / "test" / "ct_067.nii.gz", site_a / "test" / "mask_067.nii.gz"
    ct = load_ct(ct_path)
    m = load_mask(mask_path, ct)
    grown = ndimage.binary_dilation(m.data, structure=np.ones((5, 5, 1), bool)).astype(np.uint8)
    b_path = save_mask(grown, ct, tmp_path / "mask_b.nii.gz")
    r = compare_files(mask_path, b_path, ct_path)
    assert 0.3 < r.dice < 1.0
    assert r.volume_b_ml > r.volume_a_ml and math.isclose(r.difference_ml, r.volume_b_ml - r.volume_a_ml)
    sp = ct.spacing
    assert 0 < r.hd95_mm <= 2 * math.hypot(sp[0], sp[1]) + 1e-6  # grown by 2 pixels in-plane
    ks = np.flatnonzero(m.data.any(axis=(0, 1)))
    assert [s.slice for s in r.slices] == [int(k) + 1 for k in ks]  # 1-based, as in the viewer
    assert all(s.area_b_cm2 >= s.area_a_cm2 for s in r.slices)
    same = compare_volumes(m, m)
    assert same.dice == 1.0 and same.hd95_mm == 0.0 and same.difference_ml == 0.0
    # without --ct the masks' own grids must agree
    assert compare_files(mask_path, b_path).dice == pytest.approx(r.dice)
    with pytest.raises(GeometryError, match="different grids"):
        compare_files(mask_path, site_a / "test" / "mask_052.nii.gz")


def test_compare_command_prints_and_writes_json(site_a, tmp_path):
    ct_path, mask_path = site_a / "test" / "ct_052.nii.gz", site_a / "test" / "mask_052.nii.gz"
    ct = load_ct(ct_path)
    empty = save_mask(np.zeros(ct.shape, np.uint8), ct, tmp_path / "empty.nii.gz")
    out = tmp_path / "agreement.json"
    p = subprocess.run(
        [sys.executable, "-m", "core", "compare", str(mask_path), str(empty), "--ct", str(ct_path), "--json", str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr
    assert "Dice 0.000" in p.stdout and "HD95 n/a" in p.stdout and "One mask is empty" in p.stdout
    doc = json.loads(out.read_text())
    assert doc["dice"] == 0.0 and doc["hd95_mm"] is None and doc["volume_b_ml"] == 0.0
    assert doc["difference_ml"] == pytest.approx(-doc["volume_a_ml"]) and doc["slices"]
