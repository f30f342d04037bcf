"""core.evaluation.metrics against values worked out by hand, and against the real masks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core.evaluation.metrics import (
    WILCOXON_MIN_N,
    abc2,
    dice,
    pearson,
    remove_small_components,
    volume_ml,
    wilcoxon_paired,
)


# ------------------------------------------------------------------- dice/volume
def test_dice_by_hand():
    a = np.zeros((4, 4, 2), np.uint8)
    b = np.zeros_like(a)
    a[0, 0:4, 0] = 1  # 4 voxels
    b[0, 2:4, 0] = 1  # 2 voxels, both inside a
    assert dice(a, b) == pytest.approx(2 * 2 / (4 + 2))
    b[3, 3, 1] = 1  # one more voxel outside a: 2*2 / (4+3)
    assert dice(a, b) == pytest.approx(4 / 7)
    assert dice(a, a) == 1.0


def test_dice_empty_cases():
    empty = np.zeros((3, 3, 3), bool)
    one = empty.copy()
    one[1, 1, 1] = True
    assert dice(empty, empty) == 1.0  # both say "no hematoma": agreement
    assert dice(empty, one) == 0.0
    with pytest.raises(ValueError):
        dice(empty, np.zeros((3, 3, 2)))


def test_volume_ml_counts_nonzero_voxels():
    m = np.zeros((5, 5, 5), np.uint8)
    m[1:3, 1:4, 2] = 1  # 6 voxels
    m[4, 4, 4] = 7  # any non-zero counts
    assert volume_ml(m, 0.5 * 0.5 * 5 / 1000) == pytest.approx(7 * 1.25e-3)
    assert volume_ml(np.zeros((2, 2, 2)), 1.0) == 0.0


# ------------------------------------------------------------------ statistics
def test_pearson_by_hand():
    # x = 1,2,3; y = 1,2,4: sum dx*dy = 3, sum dx^2 = 2, sum dy^2 = 42/9
    res = pearson([1, 2, 3], [1, 2, 4])
    assert res.r == pytest.approx(3 / math.sqrt(2 * 42 / 9))
    assert res.n == 3 and res.note == ""
    assert 0 < res.p < 1
    assert pearson([1, 2, 3, 4], [8, 6, 4, 2]).r == pytest.approx(-1.0)


def test_pearson_degenerate_inputs_give_nan_with_a_reason():
    short = pearson([1, 2], [2, 3])
    assert math.isnan(short.r) and short.n == 2 and "at least 3" in short.note
    const = pearson([1, 2, 3], [5, 5, 5])
    assert math.isnan(const.r) and "constant" in const.note
    bad = pearson([1, 2, float("nan")], [1, 2, 3])
    assert math.isnan(bad.r) and "finite" in bad.note
    with pytest.raises(ValueError):
        pearson([1, 2, 3], [1, 2])


def test_wilcoxon_exact_p_by_hand():
    # six differences all positive: W = 0, exact two-sided p = 2 / 2**6
    a = np.array([0.7, 0.8, 0.6, 0.9, 0.75, 0.85])
    b = a - np.array([0.01, 0.02, 0.03, 0.04, 0.05, 0.06])
    res = wilcoxon_paired(a, b)
    assert res.statistic == 0.0 and res.n == 6
    assert res.p_value == pytest.approx(2 / 64)
    assert res.note == ""
    # differences ranked 1..6 with rank 2 negative: W- = 2; subsets of {1..6}
    # with rank sum <= 2 are {}, {1}, {2}: p = 2 * 3 / 64
    b2 = a - np.array([0.01, -0.02, 0.03, 0.04, 0.05, 0.06])
    res2 = wilcoxon_paired(a, b2)
    assert res2.statistic == 2.0
    assert res2.p_value == pytest.approx(6 / 64)


def test_wilcoxon_small_n_and_zero_differences_are_explained():
    a = [0.5, 0.6, 0.7, 0.8, 0.9]
    b = [0.4, 0.5, 0.6, 0.7, 0.8]
    res = wilcoxon_paired(a, b)  # the most extreme outcome with n = 5
    assert res.p_value == pytest.approx(2 / 32)
    assert "cannot be reached" in res.note and "5 non-zero" in res.note
    same = wilcoxon_paired(a, a)
    assert same.p_value == 1.0 and "all paired differences are zero" in same.note
    # one zero difference among 7 pairs leaves 6 to rank: enough, but it is said
    c = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]
    d = [0.1, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    res3 = wilcoxon_paired(c, d)
    assert "1 zero difference" in res3.note and "cannot be reached" not in res3.note
    assert WILCOXON_MIN_N == 6
    with pytest.raises(ValueError):
        wilcoxon_paired([1, 2], [1])


# ------------------------------------------------------------------ components
def test_remove_small_components_threshold_and_connectivity():
    m = np.zeros((12, 12, 12), np.uint8)
    m[0:3, 0:3, 0:3] = 1  # 27 voxels: kept (not smaller than 27)
    m[6:9, 6:9, 6:9] = 1
    m[8, 8, 8] = 0  # 26 voxels: removed
    out = remove_small_components(m)
    assert out.dtype == bool and out.sum() == 27 and out[0:3, 0:3, 0:3].all()
    assert m.sum() == 27 + 26  # input untouched
    assert remove_small_components(m, min_voxels=26).sum() == 53

    # two voxels touching only at a corner: one component with 26-connectivity
    corner = np.zeros((4, 4, 4), bool)
    corner[1, 1, 1] = corner[2, 2, 2] = True
    assert remove_small_components(corner, min_voxels=2, connectivity=3).sum() == 2
    assert remove_small_components(corner, min_voxels=2, connectivity=2).sum() == 0
    # sharing an edge: joined from 18-connectivity, apart with 6
    edge = np.zeros((4, 4, 4), bool)
    edge[1, 1, 1] = edge[2, 2, 1] = True
    assert remove_small_components(edge, min_voxels=2, connectivity=2).sum() == 2
    assert remove_small_components(edge, min_voxels=2, connectivity=1).sum() == 0
    with pytest.raises(ValueError):
        remove_small_components(edge, connectivity=4)


# ----------------------------------------------------------------------- ABC/2
def test_abc2_rectangle_by_hand():
    """3 x 4 pixels of 0.5 mm on 3 slices of 5 mm: a 1.5 x 2.0 mm rectangle
    measured between outer pixel edges. A = its diagonal 2.5 mm; B = its width
    across the diagonal = 2 * 1.5 * 2.0 / 2.5 = 2.4 mm; C = 3 * 5 = 15 mm;
    ABC/2 = 45 mm^3 = 0.045 mL, which is also the planimetric volume."""
    m = np.zeros((6, 7, 5), np.uint8)
    m[1:4, 2:6, 1:4] = 1
    r = abc2(m, np.diag([0.5, 0.5, 5.0, 1.0]))
    assert r.a_mm == pytest.approx(2.5)
    assert r.b_mm == pytest.approx(2.4)
    assert r.c_mm == pytest.approx(15.0)
    assert r.volume_ml == pytest.approx(0.045)
    assert r.slice_index == 1  # three equal slices: the lowest index
    assert volume_ml(m, 0.5 * 0.5 * 5 / 1000) == pytest.approx(0.045)


def test_abc2_single_pixel_anisotropic_and_gaps():
    one = np.zeros((3, 3, 3), np.uint8)
    one[1, 1, 1] = 1
    r = abc2(one, np.diag([0.4, 0.8, 5.0, 1.0]))
    # one 0.4 x 0.8 mm pixel: A = its diagonal, B = 2*area/A
    assert r.a_mm == pytest.approx(math.hypot(0.4, 0.8))
    assert r.b_mm == pytest.approx(2 * 0.32 / math.hypot(0.4, 0.8))
    assert r.c_mm == 5.0 and r.slice_index == 1

    # 2 x 5 pixels of 1 x 2 mm (2 mm x 10 mm) on slice 3, one pixel on slice 0,
    # nothing between: C counts the 2 slices with hematoma, not the span
    m = np.zeros((4, 8, 5), np.uint8)
    m[0:2, 1:6, 3] = 1
    m[3, 7, 0] = 1
    r = abc2(m, np.diag([1.0, 2.0, 3.0, 1.0]))
    d = math.hypot(2.0, 10.0)
    assert r.slice_index == 3
    assert r.a_mm == pytest.approx(d)
    assert r.b_mm == pytest.approx(2 * 2.0 * 10.0 / d)
    assert r.c_mm == pytest.approx(6.0)
    assert r.volume_ml == pytest.approx(d * (40 / d) * 6.0 / 2 / 1000)


def test_abc2_empty_mask_is_zero():
    r = abc2(np.zeros((4, 4, 4), np.uint8), np.eye(4))
    assert (r.a_mm, r.b_mm, r.c_mm, r.volume_ml, r.slice_index) == (0.0, 0.0, 0.0, 0.0, -1)


def _ellipsoid(semi_mm, spacing, angle_deg=0.0):
    """Digitized ellipsoid, rotated in the axial plane by ``angle_deg``."""
    ra, rb, rc = semi_mm
    si, sj, sk = spacing
    ni = int(2.4 * max(ra, rb) / si) + 4
    nj = int(2.4 * max(ra, rb) / sj) + 4
    nk = int(2.4 * rc / sk) + 4
    x = (np.arange(ni) - ni / 2 + 0.3) * si
    y = (np.arange(nj) - nj / 2 + 0.1) * sj
    z = (np.arange(nk) - nk / 2 + 0.2) * sk
    X, Y, Z = np.meshgrid(x, y, z, indexing="ij")
    t = math.radians(angle_deg)
    u = X * math.cos(t) + Y * math.sin(t)
    v = -X * math.sin(t) + Y * math.cos(t)
    return ((u / ra) ** 2 + (v / rb) ** 2 + (Z / rc) ** 2) <= 1.0


@pytest.mark.parametrize(
    "semi,spacing,angle",
    [
        ((20, 12, 15), (0.45, 0.45, 5.0), 0.0),
        ((30, 15, 25), (0.42, 0.42, 5.0), 30.0),
        ((25, 10, 12), (0.5, 0.8, 2.5), 60.0),  # anisotropic pixels, oblique long axis
    ],
)
def test_abc2_close_to_planimetric_on_ellipsoids(semi, spacing, angle):
    m = _ellipsoid(semi, spacing, angle)
    aff = np.diag([*spacing, 1.0])
    r = abc2(m, aff)
    plan = volume_ml(m, float(np.prod(spacing)) / 1000)
    assert r.volume_ml == pytest.approx(plan, rel=0.10)
    # A and B are the ellipse's axes, to within a pixel or two
    px = max(spacing[:2])
    assert r.a_mm == pytest.approx(2 * semi[0], abs=2 * px)
    assert r.b_mm == pytest.approx(2 * semi[1], abs=2 * px)


# ---------------------------------------------------------------- real masks
def _real_masks(site_dirs):
    from core.imaging.orientation import to_canonical
    from core.io import load_ct, load_mask

    for site in site_dirs:
        for split in ("train", "test", "normal"):
            folder = site / split
            for ct_path in sorted(folder.glob("ct_*.nii.gz")):
                mask_path = folder / ct_path.name.replace("ct_", "mask_")
                ct = load_ct(ct_path)
                yield split, ct_path.name, to_canonical(load_mask(mask_path, ct))[0]


def test_real_mask_volumes_and_abc2(site_a, site_b):
    """Every CT-ICH mask: hematoma cases 0.05-130 mL (the data README says
    0.1-115), normal scans 0 mL; ABC/2 is never below half the planimetric
    volume (slice area <= A x B and every slice area <= the largest one), and
    for bleeds of 5 mL or more it stays within a broad factor of it. ABC/2
    overestimates crescent-shaped and multi-focal traumatic bleeds, which are
    most of this data set, so the upper bound is loose on purpose."""
    seen = {"train": 0, "test": 0, "normal": 0}
    ratios = []
    for split, name, mask in _real_masks([site_a, site_b]):
        seen[split] += 1
        ml = volume_ml(mask.data, mask.voxel_volume_ml)
        r = abc2(mask.data, mask.affine)
        if split == "normal":
            assert ml == 0.0 and r.volume_ml == 0.0, name
            continue
        assert 0.05 <= ml <= 130.0, f"{name}: {ml:.3f} mL"
        assert r.volume_ml >= 0.5 * ml * (1 - 1e-9), f"{name}: ABC/2 {r.volume_ml:.2f} vs {ml:.2f}"
        assert 0 <= r.slice_index < mask.shape[2]
        assert r.c_mm == pytest.approx(np.count_nonzero(mask.data.any(axis=(0, 1))) * mask.spacing[2])
        if ml >= 5.0:
            ratios.append(r.volume_ml / ml)
            assert r.volume_ml <= 12 * ml, f"{name}: ABC/2 {r.volume_ml:.1f} vs {ml:.1f} mL"
    assert seen == {"train": 19, "test": 9, "normal": 10}
    assert len(ratios) >= 10
    assert 1.0 <= float(np.median(ratios)) <= 5.0
