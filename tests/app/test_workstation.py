"""The reading workstation on real case 051 (and a synthetic phantom for midline
shift): linked views, painting in any view, interpolation, limited fill,
measurements, menus and shortcuts, the clipped-range notice."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QApplication, QMessageBox

from core.annotation import Tool
from core.annotation.planes import Plane
from core.cases.case_files import measurements_path
from core.cases.measurements import MeasureKind, load_measurements

from gui_helpers import mouse_in, open_case


@pytest.fixture()
def site051(site_a: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "site051"
    folder.mkdir()
    for kind in ("ct", "mask"):
        shutil.copy(site_a / "test" / f"{kind}_051.nii.gz", folder / f"{kind}_051.nii.gz")
        os.chmod(folder / f"{kind}_051.nii.gz", 0o644)
    return folder


# ------------------------------------------------------------------ mouse on any view
def _drag(view, points) -> None:
    mouse_in(view, "press", *points[0])
    for p in points[1:]:
        mouse_in(view, "move", *p)
    mouse_in(view, "release", *points[-1])
    QApplication.processEvents()  # what the events queued (repaints, status), without sleeping


def _click(view, row: float, col: float) -> None:
    mouse_in(view, "press", row, col)
    mouse_in(view, "release", row, col)
    QApplication.processEvents()


# ------------------------------------------------------------------ views
def test_click_in_coronal_moves_the_axial_slice_to_the_clicked_height(qtbot, window, site051):
    w = window
    s = open_case(qtbot, w, site051, "051")
    views = w.viewer.views
    cor, sag = views[Plane.CORONAL], views[Plane.SAGITTAL]
    assert cor.isVisible() and sag.isVisible() and w.view.isVisible()
    # coronal and sagittal images are k (5 mm) by 0.42 mm pixels: drawn in mm, not squares
    assert cor.pixel_mm == (5.0, pytest.approx(0.421875))
    rect = cor.ct_item.mapRectToView(cor.ct_item.boundingRect())
    assert rect.height() / rect.width() == pytest.approx(46 * 5.0 / (512 * 0.421875))
    assert w.view.k != 10
    _click(cor, 10, 300)  # image row = axial slice, image column = stack column
    assert w.view.k == 10 and w.viewer.cursor[0] == 10 and w.viewer.cursor[2] == 300
    assert sag.k == 300  # the sagittal view moved to the clicked column
    assert "Slice 11 / 46" in w.view.labels["info"].text()
    # the other way: a click in the axial view moves the coronal and sagittal slices
    _click(w.view, 200, 150)
    assert cor.k == 200 and sag.k == 150 and w.view.k == 10
    # overlays and window in all views
    assert cor.manual_item.isVisible() and sag.manual_item.isVisible()
    qtbot.keyClick(w, "2")
    assert all(v.window.width == 200 for v in views.values())
    assert s.hu is w.viewer.hu


def test_painting_in_sagittal_changes_the_expected_voxels_and_undoes_in_one_step(qtbot, window, site051):
    w = window
    s = open_case(qtbot, w, site051, "051")
    sag = w.viewer.views[Plane.SAGITTAL]
    sag.set_slice(256)
    w.actions.tools[Tool.BRUSH].trigger()
    before = np.asarray(s.model.data).copy()
    depth_before = s.model.undo_depth
    _drag(sag, [(12, 200), (12, 230), (12, 260)])  # image row = slice 12, columns = rows reversed
    changed = np.argwhere(np.asarray(s.model.data) != before)
    assert len(changed) > 50
    assert set(changed[:, 0]) == {12} and set(changed[:, 2]) == {256}  # a 4 mm brush, 5 mm slices
    rows = changed[:, 1]
    brush_px = 2.0 / 0.421875 + 1  # brush radius
    # anterior on the left: image columns 200..260 are stack rows 311..251
    assert 511 - 260 - brush_px <= rows.min() <= 511 - 260 and 511 - 200 <= rows.max() <= 511 - 200 + brush_px
    assert s.model.undo_depth == depth_before + 1
    # the axial view on slice 12 shows the stroke at column 256
    w.view.set_slice(12)
    assert w.view.shown_labels(w.view.manual_item)[rows[0], 256] == 1
    # a dialog that had the focus does not swallow Ctrl+Z afterwards
    w.error_text("A message", "Test")
    box = w.findChild(QMessageBox, "errorDialog")
    qtbot.waitUntil(box.isVisible)
    box.accept()
    qtbot.waitUntil(lambda: not box.isVisible())
    qtbot.keyClick(w, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert np.array_equal(s.model.data, before)
    qtbot.keyClick(w, Qt.Key.Key_Y, Qt.KeyboardModifier.ControlModifier)  # Ctrl+Y redoes
    assert not np.array_equal(s.model.data, before)


def test_interpolation_between_two_drawn_slices_fills_between_and_undoes_in_one_step(qtbot, window, site051):
    w = window
    (site051 / "mask_051.nii.gz").unlink()  # contouring from scratch
    s = open_case(qtbot, w, site051, "051")
    w.actions.tools[Tool.BRUSH].trigger()
    w.tools_panel.brush.setValue(8.0)
    for k in (5, 9):  # the radiologists' mask has nothing below slice 22
        w.view.set_slice(k)
        _drag(w.view, [(250, 230), (250, 260), (270, 260)])
    before = np.asarray(s.model.data).copy()
    depth = s.model.undo_depth
    w.view.view.setFocus()
    qtbot.keyClick(w, "i")
    bar = w.viewer.preview_bar
    assert bar.isVisible() and "fills 3 slice(s)" in bar.text.text()
    assert w.view.preview is not None and w.view.preview[7].any()
    assert w.viewer.views[Plane.CORONAL].preview_item.isVisible()
    assert np.array_equal(s.model.data, before)  # a preview changes nothing
    qtbot.keyClick(w.view.view, Qt.Key.Key_Return)
    after = np.asarray(s.model.data)
    added = np.argwhere(after != before)
    assert set(added[:, 0]) == {6, 7, 8} and not bar.isVisible()
    for k in (6, 7, 8):  # each between-slice looks like the drawn ones
        inter = (after[k] & before[5]).sum() / before[5].sum()
        assert inter > 0.8
    assert s.model.undo_depth == depth + 1 and s.model.undo_label == "interpolate"
    qtbot.keyClick(w, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert np.array_equal(s.model.data, before)
    # Esc discards a preview
    qtbot.keyClick(w, "i")
    assert bar.isVisible()
    qtbot.keyClick(w.view.view, Qt.Key.Key_Escape)
    assert not bar.isVisible() and np.array_equal(s.model.data, before)


def test_3d_fill_from_the_scalp_of_051_stays_under_its_limit(qtbot, window, site051):
    w = window
    s = open_case(qtbot, w, site051, "051")
    k = 23
    w.view.set_slice(k)
    row = s.hu[k, 256]
    col = int(np.flatnonzero((row >= 40) & (row <= 90))[0])  # the scalp
    w.actions.tools[Tool.FLOOD_FILL].trigger()
    w.viewer_actions.fill_3d.trigger()
    assert w.edit.fill_3d and w.edit.fill_limit_ml == 5.0
    before = np.asarray(s.model.data).copy()
    with qtbot.waitSignal(w.edit.previewChanged, timeout=30000):
        _click(w.view, 256, col)
    p = w.edit.pending
    limit = int(5.0 / s.ct.voxel_volume_ml)
    assert p is not None and 0 < p.region.n_voxels <= limit
    assert "limit" in w.viewer.preview_bar.text.text() and p.extra is not None
    # from the scalp the region is still over the limit (the edge rule keeps it to a few
    # limits, where the plain HU range leaked into all the head's soft tissue: tests/core)
    assert p.extra[1].n_voxels > limit
    # adding everything asks first; refusing adds nothing
    asked = []
    w.controller.ask = lambda title, text, buttons: asked.append(text) or "Cancel"
    w.viewer.preview_bar.extra_button.click()
    assert asked and np.array_equal(s.model.data, before)
    qtbot.keyClick(w.view.view, Qt.Key.Key_Enter)
    added = np.count_nonzero(np.asarray(s.model.data) != before)
    assert 0 < added <= limit and s.model.undo_label == "flood fill"


def test_threshold_box_in_coronal(qtbot, window, site051):
    w = window
    s = open_case(qtbot, w, site051, "051")
    cor = w.viewer.views[Plane.CORONAL]
    cor.set_slice(300)
    w.actions.tools[Tool.THRESHOLD].trigger()
    before = np.asarray(s.model.data).copy()
    _drag(cor, [(5, 100), (8, 200), (10, 300)])
    added = np.argwhere(np.asarray(s.model.data) != before)
    assert len(added) and set(added[:, 1]) == {300}
    assert added[:, 0].min() >= 5 and added[:, 0].max() <= 10
    assert ((s.hu[tuple(added.T)] >= 40) & (s.hu[tuple(added.T)] <= 90)).all()


# ------------------------------------------------------------------ measurements
def _phantom(folder: Path, shift_px: int) -> Path:
    """A synthetic head: falx along stack column 100, septum shifted by ``shift_px``."""
    nk, nr, nc = 5, 200, 200
    stack = np.full((nk, nr, nc), -1000, np.int16)
    rr, cc = np.ogrid[:nr, :nc]
    stack[:, ((rr - 100) / 90.0) ** 2 + ((cc - 100) / 80.0) ** 2 <= 1] = 30
    stack[:, 20:180, 99:102] = 80  # falx
    stack[:, 95:110, 100 + shift_px - 1 : 100 + shift_px + 2] = 60  # septum pellucidum
    canonical = stack.transpose(2, 1, 0)[::-1]  # [i, j, k]: i = nc - 1 - col
    path = folder / "ct_phantom.nii.gz"
    nib.save(nib.Nifti1Image(np.ascontiguousarray(canonical), np.diag([0.45, 0.45, 5.0, 1.0])), path)
    return path


def test_midline_shift_on_a_shifted_phantom_reads_the_known_distance(qtbot, window, tmp_path):
    w = window
    shift = 18
    path = _phantom(tmp_path, shift)
    with qtbot.waitSignal(w.controller.opened, timeout=20000):
        w.controller.open_case(path)
    s = w.controller.session
    assert s.hu[2, 100, 100] == 80 and s.hu[2, 100, 100 + shift] == 60
    qtbot.keyClick(w, "s")
    assert w.edit.tool is MeasureKind.MIDLINE_SHIFT
    w.view.set_slice(2)
    _drag(w.view, [(25, 100), (100, 100), (175, 100)])  # along the falx
    assert not w.edit.measure.items
    _click(w.view, 102, 100 + shift)  # the septum
    m = w.edit.measure.items[-1]
    assert m.kind is MeasureKind.MIDLINE_SHIFT
    assert abs(m.value - shift * 0.45) <= 0.45 and "patient's left" in m.text
    stored = load_measurements(measurements_path(s.paths.mask))
    assert stored == w.edit.measure.items
    assert w.measure_panel.list.count() == 1


def test_ruler_thickness_and_hu_circle_are_kept_beside_the_mask(qtbot, window, site051):
    w = window
    s = open_case(qtbot, w, site051, "051")
    k = s.first_slice_with_mask()
    w.view.set_slice(k)
    rows, cols = np.nonzero(s.model.data[k])
    r = int(np.median(rows))
    line = np.flatnonzero(s.model.data[k, r])
    qtbot.keyClick(w, "k")
    _drag(w.view, [(r, line[0] - 20), (r, line[-1] + 20)])
    thick = w.edit.measure.items[-1]
    assert thick.kind is MeasureKind.THICKNESS
    assert thick.value == pytest.approx(len(line) * 0.421875, abs=2 * 0.421875)
    qtbot.keyClick(w, "r")
    cor = w.viewer.views[Plane.CORONAL]
    _click(cor, 10, 100)  # two clicks make a ruler too
    _click(cor, 30, 100)
    assert w.edit.measure.items[-1].value == pytest.approx(100.0, abs=0.5)  # 20 slices of 5 mm
    qtbot.keyClick(w, "c")
    _drag(w.view, [(256, 256), (256, 280)])
    circ = w.edit.measure.items[-1]
    assert circ.stats is not None and circ.stats.n > 1000 and -20 <= circ.stats.mean <= 100
    path = measurements_path(s.paths.mask)
    assert path == site051 / "measurements_051.json"
    w.controller.close_case()
    s2 = open_case(qtbot, w, site051, "051")
    assert [m.kind for m in w.edit.measure.items] == [MeasureKind.THICKNESS, MeasureKind.RULER, MeasureKind.HU_CIRCLE]
    assert w.measure_panel.list.count() == 3 and s2 is w.controller.session
    w.measure_panel.list.setCurrentRow(1)
    w.measure_panel.removeRequested.emit(1)
    assert len(load_measurements(path)) == 2


# ------------------------------------------------------------------ controls
def test_shortcut_list_matches_the_actual_bindings(qtbot, window):
    from app.shortcuts_dialog import ShortcutsDialog

    w = window
    dlg = ShortcutsDialog(w)
    rows = dlg.rows()
    listed = {(keys, cmd) for keys, cmd, _where in rows}
    bound = {}
    for act in w.findChildren(QAction):
        for seq in act.shortcuts():
            key = seq.toString(QKeySequence.SequenceFormat.PortableText)
            bound.setdefault(key, []).append(act)
        keys = ", ".join(s.toString(QKeySequence.SequenceFormat.PortableText) for s in act.shortcuts())
        if keys:
            assert (keys, act.text().replace("&", "")) in listed
    n_keyed = sum(1 for a in w.findChildren(QAction) if a.shortcuts())
    from app.viewer.view_box import MOUSE_BINDINGS

    mouse = {gesture for gesture, _what in MOUSE_BINDINGS}
    assert len([r for r in rows if r[0] not in mouse]) == n_keyed
    # no key does two things in the same place
    for key, acts in bound.items():
        contexts = [a.shortcutContext() for a in acts]
        assert len(contexts) == len(set(contexts)), f"{key} is bound to {[a.text() for a in acts]}"
    for key in ("Ctrl+Y", "Ctrl+Shift+Z", "Ctrl+Z", "Up", "L", "I", "F1", "Ctrl+0", "H", "S"):
        assert key in bound, key
    # every View/Measure/Help entry has a menu home
    titles = [m.text() for m in w.menuBar().actions()]
    assert {"&View", "&Measure", "&Help"} <= set(titles)
    dlg.deleteLater()


def test_layouts_keys_and_slice_keys_follow_the_focus(qtbot, window, site051):
    from app.viewer import Layout

    w = window
    open_case(qtbot, w, site051, "051")
    v = w.viewer
    qtbot.keyClick(w, "l")
    assert v.layout_mode is Layout.GRID and v.readout.isVisible()
    qtbot.keyClick(w, "l")
    assert v.layout_mode is Layout.SINGLE and not v.views[Plane.CORONAL].isVisible()
    qtbot.keyClick(w, Qt.Key.Key_F3)
    assert v.main_plane is Plane.CORONAL and v.views[Plane.CORONAL].isVisible()
    qtbot.keyClick(w, "1", Qt.KeyboardModifier.ControlModifier)
    assert v.layout_mode is Layout.ONE_LARGE and all(x.isVisible() for x in v.views.values())
    # the slice keys act on the view that has the focus
    cor = v.views[Plane.CORONAL]
    cor.view.setFocus()
    k = cor.k
    qtbot.keyClick(cor.view, Qt.Key.Key_Up)
    assert cor.k == k + 1 and v.cursor[1] == k + 1
    # ...and never while a table in a dock has it
    w.worklist_panel.setFocus()
    table = w.worklist_panel.findChild(type(w.worklist_panel.table)) if hasattr(w.worklist_panel, "table") else None
    target = table or w.worklist_panel
    target.setFocus()
    ka = w.view.k
    qtbot.keyClick(target, Qt.Key.Key_Up)
    assert w.view.k == ka
    # zoom in/out/reset from the keyboard
    before = w.view.vb.viewRange()[0][1] - w.view.vb.viewRange()[0][0]
    qtbot.keyClick(w, Qt.Key.Key_Equal, Qt.KeyboardModifier.ControlModifier)
    assert w.view.vb.viewRange()[0][1] - w.view.vb.viewRange()[0][0] < before * 0.9
    qtbot.keyClick(w, Qt.Key.Key_0, Qt.KeyboardModifier.ControlModifier)
    assert w.view.vb.viewRange()[0][1] - w.view.vb.viewRange()[0][0] == pytest.approx(before, rel=0.05)


def test_a_preset_beyond_the_clipped_range_says_so(qtbot, window, site051):
    w = window
    open_case(qtbot, w, site051, "051")
    assert not w.viewer.notice.isVisible()
    qtbot.keyClick(w, "4")  # bone
    assert w.viewer.notice.isVisible() and "clipped to -20 to 100 HU" in w.viewer.notice.text()
    assert "bone" in w.viewer.notice.text()
    qtbot.keyClick(w, "1")  # brain
    assert not w.viewer.notice.isVisible()
