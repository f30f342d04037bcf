"""The main window on a real case: slices, painting, undo/redo, save, reopen."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt

from core.annotation import Tool
from core.io import load_ct, load_mask

from gui_helpers import click, drag, open_case, send_mouse, wait_until


def test_open_step_paint_undo_redo_save_reopen(qtbot, window, site):
    w = window
    s = open_case(qtbot, w, site)
    view = w.view
    assert s.case_id == "067" and view.n_slices == 31
    assert s.prediction is not None and view.pred_item.isVisible()
    # opens on the slice with the most hematoma
    assert view.k == s.first_slice_with_mask()

    # --- stepping through slices: keys and slider
    view.view.setFocus()
    view.set_slice(10)
    qtbot.keyClick(view.view, Qt.Key.Key_Up)
    assert view.k == 11
    qtbot.keyClick(view.view, Qt.Key.Key_Down)
    qtbot.keyClick(view.view, Qt.Key.Key_Down)
    assert view.k == 9
    qtbot.keyClick(view.view, Qt.Key.Key_PageUp)
    assert view.k == 19
    qtbot.keyClick(view.view, Qt.Key.Key_End)
    assert view.k == 30
    qtbot.keyClick(view.view, Qt.Key.Key_Home)
    assert view.k == 0
    view.slider.setValue(5)
    assert view.k == 5
    view.vb.sigSliceStep.emit(1)  # what a wheel notch up does
    assert view.k == 6
    assert "Slice 7 / 31" in view.labels["info"].text()

    # --- paint a stroke with the brush on slice 6, across the brain
    w.actions.tools[Tool.BRUSH].trigger()
    assert w.edit.tool is Tool.BRUSH
    before = np.asarray(s.model.data).copy()
    drag(w, [(250, 200), (250, 230), (250, 260), (250, 290)])
    wait_until(qtbot, lambda: s.model.undo_depth == 1)
    painted = np.asarray(s.model.data) != before
    assert painted[6].sum() > 200 and not painted[:6].any() and not painted[7:].any()
    assert s.model.undo_depth == 1 and s.model.dirty
    assert w.windowTitle().endswith("*")
    wl_model = w.worklist_panel.model
    wait_until(qtbot, lambda: wl_model.data(wl_model.index(wl_model.row_of("067"), 5)) == "yes")  # unsaved

    # --- a second stroke on another slice, then undo both and redo one
    view.set_slice(8)
    drag(w, [(200, 250), (220, 250)])
    wait_until(qtbot, lambda: s.model.undo_depth == 2)
    assert s.model.undo_depth == 2
    qtbot.keyClick(w, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClick(w, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert np.array_equal(s.model.data, before) and not s.model.dirty
    qtbot.keyClick(w, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert s.model.data[6][painted[6]].all()
    assert np.array_equal(s.model.data[8], before[8]) and s.model.can_redo
    edited = np.asarray(s.model.data).copy()

    # --- save (Ctrl+S) and compare the file; reopen and compare
    with qtbot.waitSignal(w.controller.saved, timeout=20000) as saved:
        qtbot.keyClick(w, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    assert saved.args[0] == site / "mask_067.nii.gz"
    assert not s.model.dirty and not w.windowTitle().endswith("*")
    ct = load_ct(site / "ct_067.nii.gz")
    on_disk = load_mask(site / "mask_067.nii.gz", ct).data
    assert np.array_equal(on_disk, s.to_source(edited))
    assert w.worklist.find("067").status.status.value == "in progress"

    w.controller.close_case()
    assert w.controller.session is None and view.hu is None
    s2 = open_case(qtbot, w, site)
    assert np.array_equal(s2.model.data, edited)
    assert not (site / ".mask_067.recovery.npz").exists()


def test_click_tools_fill_accept_delete(qtbot, window, site):
    w = window
    s = open_case(qtbot, w, site)
    k = s.first_slice_with_mask()
    pred_only = (s.prediction[k] != 0) & (s.model.data[k] == 0)
    r, c = np.argwhere(pred_only)[0]
    w.actions.tools[Tool.ACCEPT_COMPONENT].trigger()
    w.view.set_slice(k)
    click(w, r, c)
    wait_until(qtbot, lambda: s.model.undo_depth == 1)
    assert s.model.data[k, r, c] == 1 and s.model.undo_depth == 1
    w.actions.tools[Tool.DELETE_COMPONENT].trigger()
    click(w, r, c)
    wait_until(qtbot, lambda: s.model.undo_depth == 2)
    assert s.model.data[k, r, c] == 0 and s.model.undo_depth == 2
    # fill inside the blood range: a click on a pixel outside the range says why
    w.actions.tools[Tool.FLOOD_FILL].trigger()
    hu = s.hu[k]
    r0, c0 = np.argwhere(hu < 0)[0]
    click(w, r0, c0)
    wait_until(qtbot, lambda: "outside 40 to 90 HU" in w.statusBar().currentMessage())
    assert s.model.undo_depth == 2 and "outside 40 to 90 HU" in w.statusBar().currentMessage()
    # whole prediction
    w.actions.accept_all.trigger()
    assert (s.model.data[s.prediction != 0] == 1).all() and s.model.undo_depth == 3


def test_window_presets_keys_and_right_drag(qtbot, window, site):
    w = window
    open_case(qtbot, w, site)
    for key, (width, level) in zip("1234", ((80, 40), (200, 75), (40, 40), (2000, 500))):
        qtbot.keyClick(w, key)
        assert (w.view.window.width, w.view.window.level) == (width, level)
    qtbot.keyClick(w, "1")
    # rows grow upwards on screen (anterior up): right-drag to the right and up
    drag(w, [(250, 250), (250, 260), (260, 300)], button=Qt.MouseButton.RightButton)
    assert w.view.window.width > 80 and w.view.window.level > 40
    assert str(w.view.window) in w.display_panel.window_label.text()


def test_cursor_shows_hu_and_position(qtbot, window, site):
    w = window
    s = open_case(qtbot, w, site)
    got = []
    w.view.cursorMoved.connect(got.append)
    send_mouse(w, "move", 256, 256, button=Qt.MouseButton.NoButton)
    wait_until(qtbot, lambda: any(g is not None for g in got))
    info = [g for g in got if g is not None][-1]
    assert (info.row, info.col) == (256, 256)
    assert info.hu == float(s.hu[w.view.k, 256, 256])
    assert f"{info.hu:.0f} HU" in w.view.labels["info"].text() and " mm" in w.view.labels["info"].text()
    # stepping slices keeps the readout under the mouse current
    k = w.view.k - 3
    w.view.set_slice(k)
    z = s.stack.world_mm(k, 256, 256)[2]
    assert f"{float(s.hu[k, 256, 256]):.0f} HU" in w.view.labels["info"].text()
    assert f"{z:.1f})" in w.view.labels["info"].text()
    # brush outline follows the mouse when a brush is chosen
    w.actions.tools[Tool.BRUSH].trigger()
    send_mouse(w, "move", 200, 200, button=Qt.MouseButton.NoButton)
    wait_until(qtbot, lambda: w.view.marks.brush_outline.isVisible())
    assert w.view.marks.brush_outline.isVisible()
    assert abs(w.view.marks.brush_outline.rect().width() - w.edit.settings.brush_mm) < 1e-6


def test_overlay_display_options(qtbot, window, site):
    w = window
    s = open_case(qtbot, w, site)
    k = w.view.k
    w.display_panel.outline["manual"].setChecked(True)
    img = w.view.manual_item.image
    assert img.sum() < np.count_nonzero(s.model.data[k])  # outline: border pixels only
    w.actions.show_prediction.trigger()
    assert not w.view.pred_item.isVisible()
    w.actions.difference.trigger()
    diff = w.view.diff_item.image
    assert w.view.diff_item.isVisible() and not w.view.manual_item.isVisible()
    m, p = s.model.data[k] != 0, s.prediction[k] != 0
    assert np.array_equal(diff == 1, m & ~p) and np.array_equal(diff == 2, p & ~m)
    w.display_panel.opacity["manual"].setValue(30)
    assert abs(w.view.manual_item.opacity() - 0.3) < 1e-6


def test_unsaved_edits_prompt_on_close(qtbot, window, site):
    w = window
    s = open_case(qtbot, w, site)
    s.model.set_slice_region(3, np.ones((5, 5), bool), 1, (100, 100))
    asked = []
    w.controller.ask = lambda title, text, buttons: asked.append(buttons) or "Cancel"
    w.controller.close_case()
    assert asked == [["Save", "Discard", "Cancel"]] and w.controller.session is s
    w.controller.ask = lambda *a: "Discard"
    w.controller.close_case()
    assert w.controller.session is None
    assert (
        load_mask(site / "mask_067.nii.gz", load_ct(site / "ct_067.nii.gz")).data.sum()
        == np.count_nonzero(s.to_source(np.asarray(s.model.data))) - 25
    )


def test_keyboard_focus_on_spinbox_does_not_switch_window(qtbot, window, site):
    w = window
    open_case(qtbot, w, site)
    box = w.tools_panel.brush
    box.setFocus()
    qtbot.keyClick(box.lineEdit(), "2")
    assert (w.view.window.width, w.view.window.level) == (80, 40)


def test_the_window_closes_when_nothing_is_unsaved(qtbot, window, site):
    """close_case answers at once when nothing is unsaved; the window must still close
    (a close() nested inside closeEvent is ignored by Qt)."""
    window.close()
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=10000)
