"""Canonical orientation by flips/permutations only, and the exact way back."""

from __future__ import annotations

import itertools

import nibabel as nib
import numpy as np
import pytest

from core.imaging.orientation import to_canonical
from core.imaging.volume import Volume


def _oriented(perm, flips):
    rng = np.random.default_rng(0)
    data = rng.integers(-100, 100, size=(5, 6, 7)).astype(np.int16)
    aff = np.zeros((4, 4))
    aff[3, 3] = 1
    spacing = (0.5, 0.7, 3.0)
    for src_axis, world_axis in enumerate(perm):
        aff[world_axis, src_axis] = spacing[src_axis] * (-1 if flips[src_axis] else 1)
    aff[:3, 3] = (10, -20, 30)
    return Volume(data, aff)


@pytest.mark.parametrize(
    "perm,flips", [(p, f) for p in itertools.permutations(range(3)) for f in [(0, 0, 0), (1, 0, 1), (1, 1, 1)]]
)
def test_every_voxel_keeps_its_world_position_and_maps_back(perm, flips):
    vol = _oriented(perm, flips)
    canon, re = to_canonical(vol)
    assert nib.aff2axcodes(canon.affine) == ("R", "A", "S")
    # each source voxel's world point holds the same value in the canonical grid
    for idx in [(0, 0, 0), (4, 5, 6), (2, 3, 1), (1, 5, 3)]:
        world = vol.affine @ np.r_[idx, 1]
        cidx = np.rint(np.linalg.inv(canon.affine) @ world)[:3].astype(int)
        assert canon.data[tuple(cidx)] == vol.data[idx]
    np.testing.assert_array_equal(re.to_source(canon.data), vol.data)
    assert canon.voxel_volume_ml == pytest.approx(vol.voxel_volume_ml)


def test_real_ctich_case_round_trip(site_a):
    from core.io import load_ct

    ct = load_ct(site_a / "test" / "ct_051.nii.gz")  # stored LAS
    canon, re = to_canonical(ct)
    assert nib.aff2axcodes(ct.affine) != ("R", "A", "S")
    np.testing.assert_array_equal(re.to_source(canon.data), ct.data)
    with pytest.raises(ValueError):
        re.to_source(np.zeros((3, 3, 3)))
