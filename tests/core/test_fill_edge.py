"""The fill stops at the bleed (issue 22): inside the brain, a lower bound raised
towards the clicked clot, and an opening that cuts thin bridges; the plain fill
of before is kept for the benchmark (edge=None)."""

from __future__ import annotations

import numpy as np

from core.annotation import Editor, EditorSettings, MaskModel, Tool
from core.annotation.fill import EdgeRule, fill_region
from core.annotation.tools import HURange

SPACING = (5.0, 0.5, 0.5)  # (slice, row, col) mm


def _phantom() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A 70 HU clot (rows/cols 20-39) against 43 HU grey matter that covers most of
    the brain (the blood range 40-90 holds both), a thin 70 HU bridge from the clot
    to a second bright blob, and 60 HU scalp outside the brain."""
    hu = np.full((5, 100, 100), 30.0, np.float32)
    hu[:, 10:90, 10:90] = 43.0  # grey matter: inside the blood range, touching the clot
    clot = np.zeros(hu.shape, bool)
    clot[1:4, 20:40, 20:40] = True
    hu[clot] = 70.0
    hu[1:4, 29:31, 40:60] = 70.0  # a 1 mm bridge
    hu[1:4, 25:35, 60:70] = 70.0  # another bright blob beyond it
    hu[:, 0:4, :] = 60.0  # scalp, outside the brain
    brain = np.zeros(hu.shape, bool)
    brain[:, 6:94, 6:94] = True
    return hu, clot, brain


def test_the_plain_fill_leaks_into_grey_matter_and_the_edge_rule_stops_at_the_clot():
    hu, clot, brain = _phantom()
    seed = (2, 30, 30)
    plain = fill_region(hu, seed, HURange(40, 90), SPACING, hu.size, three_d=True, edge=None)
    assert plain is not None and plain.region.n_voxels > 5 * clot.sum()  # the whole grey matter
    now = fill_region(hu, seed, HURange(40, 90), SPACING, hu.size, three_d=True, brain=brain)
    assert now is not None
    got = np.zeros(hu.shape, bool)
    got[now.region.box] = now.region.mask
    assert got[clot].mean() > 0.95  # the clot
    assert (got & ~clot).sum() < 0.05 * clot.sum()  # neither grey matter nor the blob past the bridge
    assert not got[:, 60:70].any()


def test_the_fill_stays_in_the_brain_and_a_click_outside_it_fills_nothing():
    hu, _, brain = _phantom()
    assert fill_region(hu, (2, 1, 50), HURange(40, 90), SPACING, hu.size, brain=brain) is None
    plain = fill_region(hu, (2, 1, 50), HURange(40, 90), SPACING, hu.size, edge=None)
    assert plain is not None and plain.region.n_voxels > 0  # the scalp, as before


def test_a_faint_bleed_keeps_the_range_bound_and_a_thin_one_keeps_its_core():
    hu = np.full((3, 60, 60), 30.0, np.float32)
    hu[1, 20:30, 20:30] = 45.0  # faint: the raised bound cannot go below the range's own
    rule = EdgeRule()
    assert rule.lower_bound(hu[1], (25, 25), (0.5, 0.5), 40.0) == 40.0
    r = fill_region(hu, (1, 25, 25), HURange(40, 90), (5.0, 0.5, 0.5), hu.size)
    assert r is not None and r.region.n_voxels == 100
    hu[1, 40, 10:50] = 70.0  # a one-pixel line: thinner than the opening, still filled along
    r = fill_region(hu, (1, 40, 30), HURange(40, 90), (5.0, 0.5, 0.5), hu.size)
    assert r is not None and r.region.mask.sum() >= 1 and r.region.mask[r.region.mask.shape[0] // 2].any()


def test_the_editor_keeps_the_blood_brush_and_box_inside_the_brain():
    hu, _, brain = _phantom()
    model = MaskModel(np.zeros(hu.shape, np.uint8))
    ed = Editor(model, hu, (0.5, 0.5), settings=EditorSettings(brush_mm=6.0), slice_mm=5.0)
    ed.brain = brain
    ed.press(Tool.BLOOD_BRUSH, 2, (8.0, 50.0))  # over the scalp (rows 0-3) and grey matter (from row 10)
    ed.release()
    assert model.data[2, 10:].any() and not model.data[2, :6].any()
    model.undo()
    ed.settings.limit_to_brain = False
    ed.press(Tool.BLOOD_BRUSH, 2, (8.0, 50.0))
    ed.release()
    assert model.data[2, :4].any()  # without the limit the scalp is painted, as before
