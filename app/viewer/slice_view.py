"""The axial slice view: CT in a window, manual and predicted masks on top.

Arrays come in the :class:`~core.annotation.stack.AxialStack` layout
``[k, row, col]`` (radiological: the patient's right on the screen's left,
anterior up), so each displayed slice is a contiguous 2-D array and changing
slice costs one table lookup for the CT and two uint8 label images for the
overlays; nothing is converted to RGBA. Pixels are scaled to millimetres, so
view coordinates are mm in the slice plane and anisotropic pixels look right.

Keys (when the view has focus): Up/Right next slice (superior), Down/Left
previous, PgUp/PgDn ten slices, Home/End first/last.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QKeySequence, QPen, QShortcut, QTransform, QColor
from PySide6.QtWidgets import QGraphicsEllipseItem, QHBoxLayout, QLabel, QSlider, QWidget

from core.annotation import AxialStack

from .overlays import (ADDED_RGB, MANUAL_RGB, PREDICTION_RGB, REMOVED_RGB, OverlayStyle,
                       difference, labels_for, lut)
from .view_box import SliceViewBox
from .windowing import WindowLevel, Windower

pg.setConfigOptions(imageAxisOrder="row-major", antialias=False)

PAGE = 10  # slices per PgUp/PgDn


@dataclass(frozen=True)
class CursorInfo:
    k: int
    row: int
    col: int
    hu: float
    world_mm: tuple[float, float, float]

    def text(self) -> str:
        x, y, z = self.world_mm
        return f"({x:.1f}, {y:.1f}, {z:.1f}) mm   {self.hu:.0f} HU"


def _label_item(table: np.ndarray, z: float) -> pg.ImageItem:
    item = pg.ImageItem(axisOrder="row-major")
    # pyqtgraph scales uint8 values by lut length / 255 when no levels are set:
    # levels (0, n) make value v pick entry v exactly.
    item.setLookupTable(table)
    item.setLevels((0, len(table)))
    item.setZValue(z)
    return item


def _corner(parent: QWidget, name: str) -> QLabel:
    lab = QLabel(parent)
    lab.setObjectName(name)
    lab.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
    lab.setStyleSheet("color: #ffd040; background: transparent; font-weight: bold;")
    return lab


class SliceView(QWidget):
    sliceChanged = Signal(int)
    windowChanged = Signal(object)  # WindowLevel
    cursorMoved = Signal(object)  # CursorInfo, or None when off the image
    editPressed = Signal(int, float, float)  # k, row, col (pixel centres are integers)
    editMoved = Signal(float, float)  # row, col
    editReleased = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("sliceView")
        self.view = pg.GraphicsView(background="k")
        self.view.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.vb = SliceViewBox()
        self.view.setCentralItem(self.vb)
        self.slider = QSlider(Qt.Orientation.Vertical)
        self.slider.setObjectName("sliceSlider")
        self.slider.setEnabled(False)
        self.slider.setToolTip("Slice (wheel, arrows, PgUp/PgDn, Home/End)")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.view, 1)
        lay.addWidget(self.slider)

        self.ct_item = pg.ImageItem(axisOrder="row-major")
        self.manual_item = _label_item(lut(MANUAL_RGB), 1)
        self.pred_item = _label_item(lut(PREDICTION_RGB), 2)
        self.diff_item = _label_item(lut(ADDED_RGB, REMOVED_RGB), 3)
        for item in (self.ct_item, self.manual_item, self.pred_item, self.diff_item):
            self.vb.addItem(item)
        self.cursor = QGraphicsEllipseItem()
        pen = QPen(QColor(255, 230, 0))
        pen.setCosmetic(True)
        self.cursor.setPen(pen)
        self.cursor.setZValue(10)
        self.cursor.hide()
        self.vb.addItem(self.cursor)

        self.labels = {n: _corner(self.view, n) for n in ("R", "L", "A", "P", "info", "window")}
        self.labels["R"].setText("R")
        self.labels["L"].setText("L")
        self.labels["A"].setText("A")
        self.labels["P"].setText("P")
        self.labels["info"].setStyleSheet("color: #e8e8e8; background: transparent;")
        self.labels["window"].setStyleSheet("color: #e8e8e8; background: transparent;")

        self.windower = Windower(WindowLevel(80, 40))
        self.styles = {"manual": OverlayStyle(), "prediction": OverlayStyle(opacity=0.9, outline=True)}
        self.difference_mode = False
        self.brush_mm: float | None = None
        self.hu: np.ndarray | None = None
        self.manual: np.ndarray | None = None
        self.prediction: np.ndarray | None = None
        self.stack: AxialStack | None = None
        self.k = 0
        self._hover: tuple[int, int] | None = None  # (row, col) under the mouse
        self._last_mouse: QPointF | None = None

        self.vb.sigSliceStep.connect(lambda d: self.set_slice(self.k + d))
        self.vb.sigWindowDrag.connect(self._window_drag)
        self.vb.sigEditPress.connect(self._edit_press)
        self.vb.sigEditMove.connect(self._edit_move)
        self.vb.sigEditRelease.connect(self.editReleased)
        self.view.scene().sigMouseMoved.connect(self._mouse_moved)
        self.slider.valueChanged.connect(self.set_slice)
        keys = {Qt.Key.Key_Up: 1, Qt.Key.Key_Right: 1, Qt.Key.Key_Down: -1, Qt.Key.Key_Left: -1,
                Qt.Key.Key_PageUp: PAGE, Qt.Key.Key_PageDown: -PAGE}
        for key, step in keys.items():
            sc = QShortcut(QKeySequence(key), self, context=Qt.ShortcutContext.WidgetWithChildrenShortcut)
            sc.activated.connect(lambda s=step: self.set_slice(self.k + s))
        for key, fn in ((Qt.Key.Key_Home, lambda: self.set_slice(0)),
                        (Qt.Key.Key_End, lambda: self.set_slice(self.n_slices - 1))):
            QShortcut(QKeySequence(key), self, context=Qt.ShortcutContext.WidgetWithChildrenShortcut
                      ).activated.connect(fn)
        self._apply_styles()
        self._place_labels()

    # ----------------------------------------------------------- content
    @property
    def n_slices(self) -> int:
        return 0 if self.hu is None else int(self.hu.shape[0])

    def set_volume(self, hu: np.ndarray, stack: AxialStack, manual: np.ndarray | None,
                   prediction: np.ndarray | None, k: int | None = None) -> None:
        """Show a new case (arrays in stack layout); the view keeps references, not copies."""
        self.hu, self.stack, self.manual, self.prediction = hu, stack, manual, prediction
        sr, sc = stack.pixel_mm
        scale = QTransform.fromScale(sc, sr)
        for item in (self.ct_item, self.manual_item, self.pred_item, self.diff_item):
            item.setTransform(scale)
        self.slider.blockSignals(True)
        self.slider.setRange(0, self.n_slices - 1)
        self.slider.setEnabled(True)
        self.slider.blockSignals(False)
        self.k = -1
        self.set_slice(self.n_slices // 2 if k is None else k)
        _, rows, cols = hu.shape
        self.vb.setRange(QRectF(0, 0, cols * sc, rows * sr), padding=0.02)
        self.view.setFocus()

    def set_prediction(self, prediction: np.ndarray | None) -> None:
        """Replace the prediction overlay (stack layout, same shape as the CT)."""
        self.prediction = prediction
        if prediction is None:
            self.pred_item.clear()
        self.refresh_overlays()

    def clear(self) -> None:
        self.hu = self.manual = self.prediction = self.stack = None
        for item in (self.ct_item, self.manual_item, self.pred_item, self.diff_item):
            item.clear()
        self.slider.setEnabled(False)
        self.labels["info"].setText("")
        self._hover = None
        self.cursor.hide()

    def set_slice(self, k: int) -> None:
        if self.hu is None:
            return
        k = int(min(max(k, 0), self.n_slices - 1))
        if k == self.k:
            return
        self.k = k
        self.ct_item.setImage(self.windower.apply(self.hu[k]), autoLevels=False)
        self.refresh_overlays()
        if self.slider.value() != k:
            self.slider.blockSignals(True)
            self.slider.setValue(k)
            self.slider.blockSignals(False)
        self._update_info()
        self.sliceChanged.emit(k)

    def refresh_overlays(self, slices: tuple[int, ...] | None = None) -> None:
        """Redraw the overlays of the shown slice (when it is among ``slices``)."""
        if self.hu is None or (slices is not None and self.k not in slices):
            return
        k = self.k
        diff = self.difference_mode and self.prediction is not None and self.manual is not None
        self.diff_item.setVisible(diff)
        if diff:
            self.diff_item.setImage(difference(self.manual[k], self.prediction[k]), autoLevels=False)
        for item, arr, name in ((self.manual_item, self.manual, "manual"),
                                (self.pred_item, self.prediction, "prediction")):
            show = not diff and arr is not None and self.styles[name].visible
            item.setVisible(show)
            if show:
                item.setImage(labels_for(arr[k], self.styles[name]), autoLevels=False)

    # ----------------------------------------------------------- display options
    @property
    def window(self) -> WindowLevel:
        return self.windower.window

    def set_window(self, wl: WindowLevel) -> None:
        self.windower.window = wl
        if self.hu is not None:
            self.ct_item.setImage(self.windower.apply(self.hu[self.k]), autoLevels=False)
        self.labels["window"].setText(str(wl))
        self.labels["window"].adjustSize()
        self._place_labels()
        self.windowChanged.emit(wl)

    def set_style(self, name: str, style: OverlayStyle) -> None:
        self.styles[name] = style
        self._apply_styles()
        self.refresh_overlays()

    def set_difference_mode(self, on: bool) -> None:
        self.difference_mode = on
        self.refresh_overlays()

    def _apply_styles(self) -> None:
        self.manual_item.setOpacity(self.styles["manual"].opacity)
        self.pred_item.setOpacity(self.styles["prediction"].opacity)
        self.diff_item.setOpacity(max(self.styles["manual"].opacity, 0.5))

    def set_brush(self, diameter_mm: float | None) -> None:
        """Show a brush outline of this size under the mouse (None: no outline)."""
        self.brush_mm = diameter_mm
        self._move_cursor(self._last_mouse)

    # ----------------------------------------------------------- mouse
    def _to_pixel(self, p: QPointF) -> tuple[float, float]:
        assert self.stack is not None
        sr, sc = self.stack.pixel_mm
        return p.y() / sr - 0.5, p.x() / sc - 0.5

    def _edit_press(self, p: QPointF) -> None:
        if self.hu is not None:
            row, col = self._to_pixel(p)
            self.editPressed.emit(self.k, row, col)

    def _edit_move(self, p: QPointF) -> None:
        if self.hu is not None:
            row, col = self._to_pixel(p)
            self.editMoved.emit(row, col)
            self._move_cursor(p)

    def _window_drag(self, dx: float, dy: float) -> None:
        self.set_window(self.window.dragged(dx, dy))

    def _mouse_moved(self, scene_pos: QPointF) -> None:
        if self.hu is None or self.stack is None:
            return
        p = self.vb.mapSceneToView(scene_pos)
        self._move_cursor(p)
        row_f, col_f = self._to_pixel(p)
        self._hover = (int(round(row_f)), int(round(col_f)))
        self.cursorMoved.emit(self._cursor_info())
        self._update_info()

    def _cursor_info(self) -> CursorInfo | None:
        """What is under the mouse on the shown slice (kept up to date on slice changes)."""
        if self._hover is None or self.hu is None or self.stack is None:
            return None
        r, c = self._hover
        _, rows, cols = self.hu.shape
        if not (0 <= r < rows and 0 <= c < cols):
            return None
        return CursorInfo(self.k, r, c, float(self.hu[self.k, r, c]), self.stack.world_mm(self.k, r, c))

    def _move_cursor(self, p: QPointF | None) -> None:
        self._last_mouse = p
        if p is None or self.brush_mm is None or self.hu is None:
            self.cursor.hide()
            return
        r = self.brush_mm / 2.0
        self.cursor.setRect(QRectF(p.x() - r, p.y() - r, 2 * r, 2 * r))
        self.cursor.show()

    def leaveEvent(self, ev):  # noqa: N802
        self._last_mouse = None
        self._hover = None
        self.cursor.hide()
        self._update_info()
        super().leaveEvent(ev)

    # ----------------------------------------------------------- corner text
    def _update_info(self) -> None:
        if self.stack is None:
            return
        z = self.stack.slice_z_mm(self.k)
        text = f"Slice {self.k + 1} / {self.n_slices}   z = {z:.1f} mm"
        info = self._cursor_info()
        if info is not None:
            text += "\n" + info.text()
        self.labels["info"].setText(text)
        self.labels["info"].adjustSize()
        self._place_labels()

    def resizeEvent(self, ev):  # noqa: N802
        super().resizeEvent(ev)
        self._place_labels()

    def _place_labels(self) -> None:
        w, h = self.view.width(), self.view.height()
        m = 6
        for lab in self.labels.values():
            lab.adjustSize()
        self.labels["R"].move(m, h // 2 - self.labels["R"].height() // 2)
        self.labels["L"].move(w - self.labels["L"].width() - m, h // 2 - self.labels["L"].height() // 2)
        self.labels["A"].move(w // 2 - self.labels["A"].width() // 2, m)
        self.labels["P"].move(w // 2 - self.labels["P"].width() // 2, h - self.labels["P"].height() - m)
        self.labels["info"].move(m, h - self.labels["info"].height() - m)
        self.labels["window"].move(w - self.labels["window"].width() - m, h - self.labels["window"].height() - m)
