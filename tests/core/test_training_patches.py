"""Patch sampling and the validation split."""

from __future__ import annotations

import numpy as np
import pytest

from core.training.patches import PatchSet, extract_patches, split_patches


def _volume():
    image = np.full((30, 26, 4), 30, np.int16)
    brain = np.zeros(image.shape, bool)
    brain[3:27, 2:24, :] = True
    image[~brain] = -20
    mask = np.zeros(image.shape, np.uint8)
    mask[5:9, 4:7, 1] = 1  # 12 hematoma voxels near the corner of the brain
    image[mask == 1] = 70
    return image, mask, brain


@pytest.mark.parametrize("size", [9, 10])
def test_centres_and_counts(size):
    image, mask, brain = _volume()
    ps = extract_patches(image, mask, brain, n=5, size=size, rng=np.random.default_rng(0), background=-20, group=3)
    assert len(ps) == 10 and ps.x.shape == (10, 1, size, size) and ps.x.dtype == np.int16
    c = size // 2
    assert (ps.y[:5, 0, c, c] == 1).all() and (ps.x[:5, 0, c, c] == 70).all()  # hematoma-centred
    assert (ps.y[5:, 0, c, c] == 0).all() and (ps.x[5:, 0, c, c] == 30).all()  # healthy brain
    assert (ps.group == 3).all()


def test_n_is_capped_by_hematoma_voxels_and_edges_are_padded():
    image, mask, brain = _volume()
    ps = extract_patches(image, mask, brain, n=1000, size=21, rng=np.random.default_rng(1), background=-20)
    assert len(ps) == 24  # 12 hematoma voxels, each used once, + 12 healthy centres
    # every hematoma voxel appears as a centre exactly once
    assert ps.y[:12].sum() == 12 * 12
    # patches reaching past the volume edge are filled with the background value
    assert ps.x.min() == -20 and set(np.unique(ps.x[:12])) <= {-20, 30, 70}


def test_healthy_per_lesion_ratio():
    image, mask, brain = _volume()
    rng = np.random.default_rng(2)
    three = extract_patches(image, mask, brain, 4, 9, rng, -20, healthy_per_lesion=3)
    assert len(three) == 16 and three.y[:4, 0, 4, 4].all() and not three.y[4:, 0, 4, 4].any()
    only_lesion = extract_patches(image, mask, brain, 4, 9, rng, -20, healthy_per_lesion=0)
    assert len(only_lesion) == 4


def test_lesion_free_volume_gives_no_patches():
    image, mask, brain = _volume()
    ps = extract_patches(image, np.zeros_like(mask), brain, 10, 9, np.random.default_rng(0), -20)
    assert len(ps) == 0


def test_same_seed_same_patches():
    image, mask, brain = _volume()
    a = extract_patches(image, mask, brain, 6, 9, np.random.default_rng(7), -20)
    b = extract_patches(image, mask, brain, 6, 9, np.random.default_rng(7), -20)
    assert np.array_equal(a.x, b.x) and np.array_equal(a.y, b.y)


def _groups(n_groups=5, per=10):
    g = np.repeat(np.arange(n_groups), per).astype(np.int32)
    x = np.arange(g.size, dtype=np.int16).reshape(-1, 1, 1, 1) * np.ones((1, 1, 2, 2), np.int16)
    return PatchSet(x, np.zeros(x.shape, np.uint8), g)


def test_split_by_patch_holds_out_20_percent():
    ps = _groups()
    train, val = split_patches(ps, 0.2, "patch", np.random.default_rng(0))
    assert len(train) == 40 and len(val) == 10
    ids = np.concatenate([train.x[:, 0, 0, 0], val.x[:, 0, 0, 0]])
    assert sorted(ids.tolist()) == list(range(50))


def test_split_by_case_keeps_volumes_whole():
    ps = _groups()
    train, val = split_patches(ps, 0.2, "case", np.random.default_rng(0))
    assert len(np.unique(val.group)) == 1 and len(val) == 10
    assert not set(train.group) & set(val.group)
    with pytest.raises(ValueError):
        split_patches(_groups(1), 0.2, "case", np.random.default_rng(0))
