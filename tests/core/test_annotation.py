"""core.annotation without Qt: undo/redo model, tools, editor, stack layout."""

from __future__ import annotations

import numpy as np
import pytest

from core.annotation import (
    AxialStack,
    Editor,
    EditorSettings,
    HURange,
    MaskModel,
    Tool,
    capsule,
    component_at,
    flood_fill,
)
from core.errors import InputError
from core.imaging.orientation import to_canonical
from core.imaging.volume import Volume


def _model(shape=(6, 40, 50), **kw) -> MaskModel:
    return MaskModel(np.zeros(shape, np.uint8), **kw)


# ------------------------------------------------------------------ model
def test_one_undo_step_per_stroke_across_slices():
    m = _model()
    events = []
    m.subscribe(events.append)
    m.begin_stroke("brush")
    m.set_slice_region(1, np.ones((3, 3), bool), 1, (5, 5))
    m.set_slice_region(4, np.ones((2, 2), bool), 1, (10, 10))
    m.set_slice_region(1, np.ones((3, 3), bool), 1, (6, 6))  # overlaps the first dab
    edit = m.end_stroke()
    assert edit is not None and edit.n_voxels == 9 + 4 + 5
    assert m.undo_depth == 1 and int(m.data.sum()) == 18
    assert events[-1].reason == "stroke" and events[-1].slices == (1, 4)
    # the undo record holds only changed voxels, not a copy of the volume
    assert edit.nbytes < 18 * 10
    assert m.undo()
    assert int(m.data.sum()) == 0 and events[-1].reason == "undo" and events[-1].slices == (1, 4)
    assert m.redo()
    assert int(m.data[1].sum()) == 14 and int(m.data[4].sum()) == 4


def test_stroke_restoring_its_own_change_is_no_step():
    m = _model()
    m.begin_stroke("brush")
    m.set_slice_region(2, np.ones((2, 2), bool), 1, (0, 0))
    m.set_slice_region(2, np.ones((2, 2), bool), 0, (0, 0))
    assert m.end_stroke() is None and m.undo_depth == 0 and not m.dirty


def test_more_than_100_undo_steps_and_limit():
    m = _model(max_undo=150)
    for n in range(160):
        k, r = n % 6, n // 6
        m.set_slice_region(k, np.ones((1, 2), bool), 1, (r, 0))  # outside a stroke: one step each
    assert m.undo_depth == 150
    for _ in range(150):
        assert m.undo()
    assert not m.undo()
    # the 10 oldest strokes were dropped from history; everything newer is undone
    assert int(m.data.sum()) == 10 * 2
    for _ in range(150):
        assert m.redo()
    assert int(m.data.sum()) == 160 * 2


def test_new_stroke_clears_redo_and_dirty_tracks_saved_state():
    m = _model()
    m.set_slice_region(0, np.ones((2, 2), bool), 1)
    m.mark_saved()
    assert not m.dirty
    m.set_slice_region(0, np.ones((2, 2), bool), 1, (5, 5))
    assert m.dirty
    m.undo()
    assert not m.dirty  # back at the saved state
    m.undo()
    assert m.dirty
    m.redo()
    assert not m.dirty
    m.set_slice_region(3, np.ones((1, 1), bool), 1)
    assert not m.can_redo and m.dirty


def test_data_is_read_only_and_values_checked():
    m = _model()
    with pytest.raises(ValueError):
        m.data[0, 0, 0] = 1
    with pytest.raises(ValueError):
        m.set_slice_region(0, np.ones((1, 1), bool), 2)


def test_replace_is_one_undoable_step():
    m = _model()
    m.set_slice_region(0, np.ones((4, 4), bool), 1)
    target = np.zeros(m.shape, np.uint8)
    target[5, 10:12, 10:13] = 1
    m.replace(target, "restore")
    assert np.array_equal(m.data, target) and m.undo_label == "restore"
    m.undo()
    assert int(m.data[0].sum()) == 16 and int(m.data[5].sum()) == 0


# ------------------------------------------------------------------ tools
def test_capsule_is_round_in_mm_and_covers_a_fast_drag():
    dab = capsule((100, 100), (50, 50), (50, 50), radius_mm=2.0, pixel_mm=(0.5, 1.0))
    rows = np.flatnonzero(dab.mask.any(axis=1))
    cols = np.flatnonzero(dab.mask.any(axis=0))
    assert rows.size == 9 and cols.size == 5  # 4 px each way in rows (0.5 mm), 2 in cols
    line = capsule((100, 100), (10, 10), (10, 80), radius_mm=1.0, pixel_mm=(1.0, 1.0))
    full = np.zeros((100, 100), bool)
    full[line.box] = line.mask
    assert full[10, 10:81].all() and not full[10, 82] and not full[12, 40]


def test_capsule_tiny_brush_paints_the_pixel_and_clips_at_edges():
    dab = capsule((10, 10), (3.2, 4.1), (3.2, 4.1), radius_mm=0.1, pixel_mm=(1.0, 1.0))
    full = np.zeros((10, 10), bool)
    full[dab.box] = dab.mask
    assert full.sum() == 1 and full[3, 4]
    edge = capsule((10, 10), (0, 0), (0, 0), radius_mm=3, pixel_mm=(1.0, 1.0))
    assert edge.offset == (0, 0) and edge.mask.shape == (4, 4)
    with pytest.raises(InputError):
        capsule((10, 10), (0, 0), (0, 0), radius_mm=0, pixel_mm=(1.0, 1.0))


def test_flood_fill_stays_in_range_and_4_connected():
    hu = np.zeros((20, 20), np.int16)
    hu[2:6, 2:6] = 60
    hu[6, 6] = 60  # touches the block only diagonally
    hu[10:12, 10:12] = 120  # too dense: bone
    region = flood_fill(hu, (3, 3), HURange(40, 90))
    assert region.mask.sum() == 16 and not region.mask[6, 6]
    assert flood_fill(hu, (10, 10), HURange(40, 90)).empty
    with pytest.raises(InputError):
        HURange(90, 40)


def test_component_at_is_3d_26_connected():
    m = np.zeros((5, 10, 10), np.uint8)
    m[1, 2:4, 2:4] = 1
    m[2, 4, 4] = 1  # diagonal neighbour across slices: same part
    m[3, 8, 8] = 1  # separate
    part = component_at(m, (1, 2, 2))
    assert part is not None and part.n_voxels == 5
    assert component_at(m, (0, 0, 0)) is None


# ------------------------------------------------------------------ editor
def _editor(pred: np.ndarray | None = None) -> tuple[Editor, MaskModel, np.ndarray]:
    hu = np.full((4, 30, 30), 30, np.int16)  # brain-like
    hu[1, 10:20, 10:20] = 65  # a bleed on slice 1
    hu[1, 12:14, 12:14] = 20  # a dark spot inside (not blood)
    model = _model(hu.shape)
    ed = Editor(model, hu, (1.0, 1.0), pred, EditorSettings(brush_mm=40.0, hu_range=HURange(40, 90)))
    return ed, model, hu


def test_blood_brush_paints_only_in_hu_range():
    ed, model, hu = _editor()
    ed.press(Tool.BLOOD_BRUSH, 1, (15.0, 15.0))
    ed.drag((16.0, 16.0))
    out = ed.release()
    painted = model.data[1] != 0
    assert out.changed == 100 - 4
    assert np.array_equal(painted, (hu[1] >= 40) & (hu[1] <= 90))
    assert model.undo_depth == 1
    # nothing in range: no undo step, and a message saying why
    assert ed.press(Tool.BLOOD_BRUSH, 0, (5.0, 5.0)).changed == 0
    out = ed.release()
    assert model.undo_depth == 1 and out.changed == 0 and "40 to 90 HU" in out.message


def test_brush_drag_across_slice_change_and_eraser():
    ed, model, _ = _editor()
    ed.settings.brush_mm = 3.0
    ed.press(Tool.BRUSH, 2, (5.0, 5.0))
    ed.drag((5.0, 25.0))
    ed.release()
    assert model.data[2, 5, 5:26].all() and model.undo_depth == 1
    ed.press(Tool.ERASER, 2, (5.0, 15.0))
    ed.release()
    assert not model.data[2, 5, 15] and model.data[2, 5, 5] and model.undo_depth == 2
    model.undo()
    assert model.data[2, 5, 5:26].all()


def test_fill_and_messages():
    ed, model, hu = _editor()
    out = ed.press(Tool.FLOOD_FILL, 1, (15.0, 15.0))
    # the 96 bleed pixels but a few next to the dark spot (the fill's opening stops at the
    # bleed's edge, core.annotation.fill.EdgeRule), nothing outside the bleed
    assert 85 <= out.changed <= 96 and model.undo_depth == 1
    assert not model.data[1][hu[1] < 40].any()
    out = ed.press(Tool.FLOOD_FILL, 1, (12.0, 12.0))
    assert out.changed == 0 and "20 HU" in out.message and "40 to 90 HU" in out.message


def test_accept_prediction_whole_or_part_and_delete_part():
    pred = np.zeros((4, 30, 30), np.uint8)
    pred[1, 2:5, 2:5] = 1
    pred[2, 20:22, 20:22] = 1
    ed, model, _ = _editor(pred)
    out = ed.press(Tool.ACCEPT_COMPONENT, 2, (20.0, 21.0))
    assert out.changed == 4 and int(model.data.sum()) == 4
    assert ed.press(Tool.ACCEPT_COMPONENT, 0, (0.0, 0.0)).changed == 0
    assert ed.accept_prediction().changed == 9 and int(model.data.sum()) == 13
    out = ed.press(Tool.DELETE_COMPONENT, 1, (3.0, 3.0))
    assert out.changed == 9 and int(model.data.sum()) == 4
    assert model.undo_depth == 3
    no_pred, _, _ = _editor(None)
    assert "no model prediction" in no_pred.accept_prediction().message


# ------------------------------------------------------------------ layout
def test_axial_stack_round_trip_and_radiological_layout():
    lps = np.diag([-0.5, -0.6, 2.0, 1.0])  # source in L P S (like DICOM)
    data = np.arange(4 * 5 * 3, dtype=np.int16).reshape(4, 5, 3)
    canon, reo = to_canonical(Volume(data, lps))
    st = AxialStack(canon.shape, canon.affine)
    stack = st.to_stack(canon.data)
    assert stack.shape == (3, 5, 4) and stack.flags.c_contiguous
    assert np.array_equal(reo.to_source(st.from_stack(stack)), data)
    assert st.spacing == pytest.approx((2.0, 0.6, 0.5))
    # RAS+: world x grows towards the patient's right. Column 0 (drawn on the
    # screen's left) must be the patient's right side: the radiological convention.
    assert st.world_mm(0, 0, 0)[0] > st.world_mm(0, 0, 3)[0]
    y_row0, y_row4 = st.world_mm(0, 0, 0)[1], st.world_mm(0, 4, 0)[1]
    assert y_row4 > y_row0  # rows run posterior -> anterior
