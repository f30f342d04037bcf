"""Tools > Click bleed in the window: a click gives a preview, Enter accepts it as one
undo step, Esc drops it, Shift+click and right-click take blood out, Backspace takes
back a click, and the work runs on a worker (the window keeps answering)."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt

from app.viewer.marks import scene_point
from core.annotation import Tool

from gui_helpers import click, open_case, send_mouse, wait_until

SLOW = 300000  # ms: a click takes well under a second on a quiet machine; CI machines are not always quiet


def _idle(qtbot, w) -> None:
    wait_until(qtbot, lambda: w.edit.clicks._segment is None and w.edit.clicks._prepare is None, SLOW)


def _wait_preview(qtbot, w) -> np.ndarray:
    wait_until(qtbot, lambda: w.edit.clicks.clicks is not None and w.edit.clicks.clicks.result is not None, SLOW)
    _idle(qtbot, w)
    wait_until(qtbot, lambda: w.viewer.axial.preview is not None, SLOW)
    return w.viewer.axial.preview


def test_click_bleed_preview_accept_discard_and_negative(qtbot, window, site):
    w = window
    s = open_case(qtbot, w, site, "052")
    s.model.replace(np.zeros(s.model.shape, np.uint8), "clear")  # start from an empty mask
    depth = s.model.undo_depth
    w.actions.tools[Tool.CLICK_BLEED].trigger()
    assert w.edit.tool is Tool.CLICK_BLEED

    # the first click prepares the case on a worker, then previews
    click(w, 10, 10)  # anywhere: the case gets prepared
    wait_until(qtbot, lambda: w.edit.clicks.context is not None, SLOW)
    _idle(qtbot, w)
    ctx = w.edit.clicks.context
    w.edit.discard_preview()
    # a pixel the model calls blood on some slice: the click there must add its part
    fg = ctx.prob > 0.5
    assert fg.any(), "the model finds no blood at all in case 052"
    k = int(np.argmax(fg.sum(axis=(1, 2))))
    rows, cols = np.nonzero(fg[k])
    row, col = int(rows[len(rows) // 2]), int(cols[len(cols) // 2])
    w.view.set_slice(k)
    click(w, row, col)
    preview = _wait_preview(qtbot, w)
    assert preview[k, row, col] == 1 and (preview == 1).sum() > 10
    assert s.model.undo_depth == depth  # nothing applied yet
    # the click is marked where it was made (a ringed +), on its slice only
    axial = w.viewer.axial
    marked = axial.marks.clicks[True].path()
    assert not marked.isEmpty() and axial.marks.clicks[False].path().isEmpty()
    centre = marked.boundingRect().center()
    expected = scene_point(axial.geo, *axial.geo.from_voxel((k, row, col))[1:])
    assert abs(centre.x() - expected.x()) < 0.5 and abs(centre.y() - expected.y()) < 0.5
    other = k + 1 if k + 1 < s.model.shape[0] else k - 1
    w.view.set_slice(other)
    assert axial.marks.clicks[True].path().isEmpty()
    w.view.set_slice(k)
    assert not axial.marks.clicks[True].path().isEmpty()

    # Esc drops it; the mask is untouched
    qtbot.keyClick(w.view.view, Qt.Key.Key_Escape)
    wait_until(qtbot, lambda: w.viewer.axial.preview is None)
    assert not np.asarray(s.model.data).any() and s.model.undo_depth == depth
    assert axial.marks.clicks[True].path().isEmpty()  # the dropped click's mark goes with it

    # click again, Enter: one undo step named after the tool
    click(w, row, col)
    _wait_preview(qtbot, w)
    qtbot.keyClick(w.view.view, Qt.Key.Key_Return)
    wait_until(qtbot, lambda: s.model.undo_depth == depth + 1)
    assert s.model.undo_label == "click bleed" and s.model.data[k, row, col] == 1
    added = int(np.count_nonzero(s.model.data))
    # the model drew it: the provenance says so (not "manual"), in the panels and the reports
    assert s.origin is not None and s.origin.prediction_file == "click bleed"
    assert s.shown_mask_label().startswith("from model ")
    assert s.mask_provenance("").source.startswith("model ") and s.mask_provenance("").automatic

    # a right-click on the added part takes blood out: preview in purple (2), then Enter
    send_mouse(w, "press", row, col, button=Qt.MouseButton.RightButton)
    send_mouse(w, "release", row, col, button=Qt.MouseButton.RightButton)
    preview = _wait_preview(qtbot, w)
    assert preview[k, row, col] == 2
    assert not axial.marks.clicks[False].path().isEmpty()  # a ringed - where blood was taken out
    # Backspace takes that click back: nothing waits any more
    qtbot.keyClick(w.view.view, Qt.Key.Key_Backspace)
    wait_until(qtbot, lambda: w.viewer.axial.preview is None)
    assert int(np.count_nonzero(s.model.data)) == added
    assert axial.marks.clicks[False].path().isEmpty()

    # undo removes exactly the accepted click result
    w.actions.undo.trigger()
    assert not np.asarray(s.model.data).any()
