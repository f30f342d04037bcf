"""Brain extraction on real data: hematomas stay inside, volumes plausible."""

from __future__ import annotations

import glob

import numpy as np
import pytest

from core.errors import InputError
from core.imaging.brain import brain_mask
from core.imaging.volume import Volume
from core.io import load_ct, load_mask


@pytest.fixture(scope="module")
def coverage(data_root):
    """Every CT-ICH case with a hematoma: (fraction inside brain, brain mL)."""
    out = {}
    for f in sorted(glob.glob(str(data_root / "ctich" / "*" / "*" / "ct_*.nii.gz"))):
        mask_path = f.replace("/ct_", "/mask_")
        ct = load_ct(f)
        hem = load_mask(mask_path, ct).data.astype(bool)
        if not hem.any() and "/normal/" not in f:
            continue
        if "/normal/" in f and f[-13:-7] not in ("ct_054", "ct_095"):  # two normals suffice
            continue
        brain = brain_mask(ct)
        cover = (hem & brain).sum() / hem.sum() if hem.any() else float("nan")
        out[f.split("ctich/")[1]] = (cover, brain.sum() * ct.voxel_volume_ml)
    return out


@pytest.mark.slow
def test_hematoma_inside_brain_mask(coverage):
    covers = {k: v[0] for k, v in coverage.items() if not np.isnan(v[0])}
    assert len(covers) == 28
    assert np.mean(list(covers.values())) >= 0.99, covers
    worst = min(covers, key=covers.get)
    assert covers[worst] >= 0.95, f"{worst}: {covers[worst]:.3f}"


@pytest.mark.slow
def test_brain_volumes_are_plausible(coverage):
    assert len(coverage) == 30  # the 28 cases with a hematoma and two normal scans
    for case, (_, ml) in coverage.items():
        if case.endswith("ct_085.nii.gz"):  # an infant: small skull, open sutures
            assert 250 < ml < 900, (case, ml)
        else:
            # intracranial volume of adults (~1100-1700 mL) plus a 3 mm rim of inner table
            assert 1000 < ml < 2100, (case, ml)


def test_full_range_ct_and_tilted_dicom(data_root):
    for src in ("cranium_ct.nii.gz", "dicom-ge-tilt"):
        ct = load_ct(data_root / "headct" / src)
        brain = brain_mask(ct)
        ml = brain.sum() * ct.voxel_volume_ml
        assert 1000 < ml < 2100, (src, ml)
        # no bone beyond the thin inner rim, no air: mostly soft tissue
        hu = ct.data[brain]
        assert np.mean((hu >= -10) & (hu < 100)) > 0.85, src
        assert np.mean(hu > 300) < 0.08, src


def test_phantom_without_skull_is_refused():
    data = np.full((64, 64, 10), -1000, np.int16)
    data[20:40, 20:40, :] = 40  # tissue, no bone around it
    with pytest.raises(InputError, match="brain"):
        brain_mask(Volume(data, np.diag([0.5, 0.5, 5, 1])))


def test_phantom_with_skull_keeps_subdural_rim():
    """A synthetic skull ring with a crescent of blood (70 HU) against it."""
    n = 160
    i, j = np.mgrid[:n, :n]
    r = np.hypot(i - n / 2, j - n / 2)
    sl = np.where(r < 60, 32, np.where(r < 66, 1000, np.where(r < 70, 40, -1000))).astype(np.int16)
    blood = (r >= 54) & (r < 60) & (i < n / 2)
    sl[blood] = 70
    data = np.repeat(sl[:, :, None], 24, axis=2)
    data[:, :, [0, 1, 22, 23]] = np.where(r < 66, 1000, -1000)[:, :, None]  # skull cap and base
    vol = Volume(data, np.diag([1.0, 1.0, 5.0, 1.0]))
    brain = brain_mask(vol)
    inner = np.repeat((r < 60)[:, :, None], 24, axis=2)
    inner[:, :, [0, 1, 22, 23]] = False
    hem = np.repeat(blood[:, :, None], 24, axis=2) & inner
    assert (brain & hem).sum() / hem.sum() > 0.99
    assert not brain[r[:, :, None].repeat(24, 2) >= 69].any()  # scalp excluded
