"""Issue 26's reading tools without Qt: interpolation joins only drawings of the same part,
the Islands clean-up, and finding the slices with bleed."""

from __future__ import annotations

import numpy as np
import pytest

from core.annotation.interpolate import interpolate_between_slices
from core.annotation.islands import find_islands, keep_largest, keep_parts, remove_parts, smaller_than
from core.annotation.navigation import largest_slice, marked_slices, next_marked

SPACING = (5.0, 0.5, 0.5)  # slice, row, col (mm)


def _disc(shape, centre, radius):
    r, c = np.ogrid[: shape[0], : shape[1]]
    return (r - centre[0]) ** 2 + (c - centre[1]) ** 2 <= radius**2


def test_interpolation_joins_only_drawings_of_the_same_part():
    m = np.zeros((40, 120, 120), np.uint8)
    m[20][_disc((120, 120), (30, 30), 8)] = 1  # a drawing ...
    m[24][_disc((120, 120), (32, 33), 10)] = 1  # ... and the same part 4 slices up (shifted 2 mm)
    for k in range(31, 36):  # the bleed, 40 mm away in the slice plane
        m[k][_disc((120, 120), (90, 90), 12)] = 1
    r = interpolate_between_slices(m, 0, SPACING)
    assert r.filled_slices == (21, 22, 23)  # never 25-30: the drawing and the bleed are other parts
    assert r.gaps == 1 and r.unpaired == 2
    added = np.zeros_like(m, bool)
    added[r.region.box] = r.region.mask
    assert not added[25:31].any()
    assert added[22, 31, 31] and not added[22, 90, 90]


def test_interpolation_pairs_each_part_with_its_own_outline():
    """Two bleeds on both drawn slices: each is interpolated with itself, none is blended
    into the other (a plain blend of both slices would bridge them)."""
    m = np.zeros((10, 120, 120), np.uint8)
    for k in (2, 6):
        m[k][_disc((120, 120), (30, 30), 8)] = 1
        m[k][_disc((120, 120), (30, 90), 8)] = 1
    r = interpolate_between_slices(m, 0, SPACING)
    added = np.zeros_like(m, bool)
    added[r.region.box] = r.region.mask
    assert r.filled_slices == (3, 4, 5) and r.unpaired == 0
    assert added[4, 30, 30] and added[4, 30, 90] and not added[4, 30, 60]  # no bridge between them


def test_islands_list_and_clean_up():
    m = np.zeros((8, 40, 40), np.uint8)
    m[1:5, 5:15, 5:15] = 1  # 400 voxels, slices 1-4
    m[6, 30:33, 30:33] = 1  # 9 voxels
    m[2, 30, 5] = 1  # 1 voxel
    isl = find_islands(m, 0.01)
    assert [p.n_voxels for p in isl.parts] == [400, 9, 1] and [p.number for p in isl.parts] == [1, 2, 3]
    big = isl.parts[0]
    assert (big.first_slice, big.last_slice, big.slices_text()) == (1, 4, "2-5")
    assert big.volume_ml == pytest.approx(4.0) and m[big.centre] and isl.at(big.centre) == big
    assert keep_largest(isl).n_voxels == 10
    assert smaller_than(isl, 0.5) == {2, 3} and remove_parts(isl, smaller_than(isl, 0.05)).n_voxels == 1
    assert keep_parts(isl, {2}).n_voxels == 401 and remove_parts(isl, set()) is None
    assert len(find_islands(np.zeros((2, 8, 8)), 1.0)) == 0


def test_slices_with_bleed():
    manual = np.zeros((10, 8, 8), np.uint8)
    pred = np.zeros_like(manual)
    manual[3, 1, 1] = 1
    pred[7, 2:5, 2:5] = 1
    assert list(marked_slices([manual, pred, None], 0)) == [3, 7]
    assert next_marked([manual, pred], 0, 0, 1) == 3 and next_marked([manual, pred], 0, 3, 1) == 7
    assert next_marked([manual, pred], 0, 7, 1) is None and next_marked([manual, pred], 0, 9, -1) == 7
    assert largest_slice(pred) == 7 and largest_slice(np.zeros((2, 2, 2))) is None
