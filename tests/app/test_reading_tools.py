"""Issue 26, items 3 to 6 on a real case: finding the bleed, interpolation per part, the
Islands tool, and controls that do what their labels say."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication, QDoubleSpinBox

from app.viewer import Layout
from core.annotation import Tool
from core.annotation.session import PredictionUpdate

from gui_helpers import click, open_case, wait_until


def _blob(s, k: int, row: int, col: int, size: int = 14) -> None:
    s.model.begin_stroke("brush")
    s.model.set_slice_region(k, np.ones((size, size), bool), 1, (row, col))
    s.model.end_stroke()


# ------------------------------------------------------------------ item 3: finding the bleed
def test_jump_to_the_slices_with_bleed_and_open_where_it_is_largest(qtbot, window, site):
    w = window
    s = open_case(qtbot, w, site, "067")  # mask on slices 16-20 (0-based), the prediction on 17-20
    per_slice = np.count_nonzero(s.model.data, axis=(1, 2))
    assert w.view.k == int(np.argmax(per_slice))  # opened where the bleed is largest
    va = w.viewer_actions
    w.view.set_slice(0)
    va.next_bleed.trigger()
    assert w.view.k == 16
    va.next_bleed.trigger()
    assert w.view.k == 17
    w.view.set_slice(30)
    va.previous_bleed.trigger()
    pred_top = int(np.flatnonzero(s.prediction.any(axis=(1, 2)))[-1])
    assert w.view.k == max(20, pred_top)

    # a case with no mask whose prediction comes later (the default model on a worker):
    # it opens in the middle, then goes to the predicted bleed's largest slice
    (site / "mask_052.nii.gz").unlink()
    s = open_case(qtbot, w, site, "052")
    middle = w.view.k
    pred = np.zeros(s.model.shape, np.uint8)
    pred[9:14, 300:330, 300:330] = 1
    pred[12, 280:350, 280:350] = 1  # the largest slice: 12
    s.set_prediction(PredictionUpdate(pred, "test", 0.0))
    w.predictions.updated.emit(s, "Prediction: test")
    assert middle != 12 and w.view.k == 12


# ------------------------------------------------------------------ item 4: interpolation per part
def test_interpolation_joins_only_drawings_of_the_same_part(qtbot, window, site):
    w = window
    s = open_case(qtbot, w, site, "067")  # the bleed: slices 16-20, columns ~376-383
    _blob(s, 8, 250, 200)  # the reader's drawing on slices 8 and 12, far from the bleed
    _blob(s, 12, 252, 203)
    w.viewer.active_plane = w.viewer.axial.plane
    w.viewer_actions.interpolate.trigger()
    p = w.edit.pending
    assert p is not None and "fills 3 slice(s)" in p.text, p.text if p else w.statusBar().currentMessage()
    preview = np.zeros(s.model.shape, bool)
    preview[p.region.box] = p.region.mask
    filled = sorted(set(np.flatnonzero(preview.any(axis=(1, 2)))))
    assert filled == [9, 10, 11]  # never 13-15, between the drawing and the bleed
    w.viewer_actions.accept_preview.trigger()
    assert s.model.data[10, 255, 207]


# ------------------------------------------------------------------ item 5: islands
def test_islands_list_and_clean_up_the_separate_parts(qtbot, window, site):
    w = window
    s = open_case(qtbot, w, site, "067")
    _blob(s, 5, 100, 100, 4)  # two specks, like scalp painted through thin bone
    _blob(s, 25, 120, 400, 6)
    w.actions.islands.trigger()
    dlg = w.islands
    assert dlg.isVisible() and dlg.table.rowCount() == 3
    volumes = [float(dlg.table.item(r, 1).text().split()[0]) for r in range(3)]
    assert volumes == sorted(volumes, reverse=True) and "3 separate part(s)" in dlg.summary.text()
    dlg.table.selectRow(2)  # a click on a part: the views go to it
    assert w.viewer.cursor == dlg.islands.parts[2].centre
    dlg.min_ml.setValue(0.025)  # the specks are 0.016 and 0.035 mL
    dlg.remove_small_button.click()
    assert dlg.table.rowCount() == 2 and "one undo step" in w.statusBar().currentMessage()
    s.model.undo()
    wait_until(qtbot, lambda: dlg.table.rowCount() == 3)
    dlg.keep_largest_button.click()
    assert dlg.table.rowCount() == 1 and not s.model.data[5].any() and not s.model.data[25].any()
    s.model.undo()
    wait_until(qtbot, lambda: dlg.table.rowCount() == 3)
    dlg.table.clearSelection()
    dlg.table.selectRow(1)
    dlg.keep_selected_button.click()
    assert dlg.table.rowCount() == 1 and s.model.data[25].any() and not s.model.data[16:21].any()
    w.controller.ask = lambda *a: "Discard"


# ------------------------------------------------------------------ item 6: controls as labelled
def test_controls_behave_as_labelled(qtbot, window, site):
    w = window
    s = open_case(qtbot, w, site, "067")
    # Ctrl+3, "one view maximised": the view fills the image area
    w.viewer_actions.layouts[Layout.SINGLE].trigger()
    qtbot.wait(50)
    area = w.viewer.height()
    assert w.view.height() >= 0.9 * area and w.view.width() >= 0.9 * w.viewer.width()
    w.viewer_actions.layouts[Layout.ONE_LARGE].trigger()
    qtbot.wait(50)

    # the preview banner floats over the views: showing it moves nothing
    before = w.view.mapTo(w, QPoint(0, 0))
    # Shift+F, listed as "3-D fill": the next click fills in 3-D
    w.viewer_actions.fill_3d.trigger()
    assert w.edit.tool is Tool.FLOOD_FILL and w.edit.fill_3d
    k = int(np.argmax(np.count_nonzero(s.model.data, axis=(1, 2))))
    w.view.set_slice(k)
    rows, cols = np.nonzero(s.model.data[k] & (s.hu[k] >= 40) & (s.hu[k] <= 90))
    i = len(rows) // 2
    click(w, float(rows[i]), float(cols[i]))
    wait_until(qtbot, lambda: w.edit.pending is not None, 60000)
    assert "3-D" in w.edit.pending.text and w.viewer.preview_bar.isVisible()
    qtbot.wait(50)
    assert w.view.mapTo(w, QPoint(0, 0)) == before
    w.viewer_actions.discard_preview.trigger()

    # a spin box ignores the wheel unless it has the focus (the panel scrolls instead)
    limit = w.measure_panel.findChild(QDoubleSpinBox, "fillLimit")
    value = limit.value()
    w.viewer.axial.view.setFocus()

    def wheel(widget) -> None:
        pos = QPointF(widget.width() / 2, widget.height() / 2)
        ev = QWheelEvent(
            pos, widget.mapToGlobal(pos), QPoint(0, 0), QPoint(0, 120), Qt.MouseButton.NoButton,
            Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False,
        )  # fmt: skip
        QApplication.sendEvent(widget, ev)

    wheel(limit)
    assert limit.value() == value
    limit.setFocus()
    wheel(limit)
    assert limit.value() > value

    # at 1500 x 950 "Report this case" and "Compare masks…" are in sight without scrolling
    w.resize(1500, 950)
    qtbot.wait(100)
    scroll = w.report_panel.parentWidget().parentWidget().parentWidget()
    for button in (w.report_panel.case_button, w.report_panel.compare_button):
        bottom = button.mapTo(scroll.viewport(), QPoint(0, button.height())).y()
        assert 0 < bottom <= scroll.viewport().height(), (button.text(), bottom, scroll.viewport().height())
