"""One slice view (axial, coronal or sagittal): CT in a window, masks on top.

Arrays come in the :class:`~core.annotation.stack.AxialStack` layout
``[k, row, col]``; :class:`~core.annotation.planes.PlaneGeometry` cuts the
plane's slice out of them (an axial slice is a contiguous view, a coronal or
sagittal one a small copy). Changing slice costs one table lookup for the CT
and a few uint8 label images for the overlays; nothing is converted to RGBA.
Pixels are scaled to millimetres, so view coordinates are mm in the slice
plane and 0.4 x 5 mm coronal pixels look as tall as they are.

The view draws a crosshair at the linked cursor (set by
:class:`~app.viewer.viewer_area.ViewerArea`), any measurements on the shown
slice, the threshold box and the brush outline (:mod:`app.viewer.marks`).
Keyboard bindings live in :mod:`app.menus`; the mouse's in
:mod:`app.viewer.view_box`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QTransform
from PySide6.QtWidgets import QHBoxLayout, QSlider, QWidget

from core.annotation import AxialStack
from core.annotation.planes import Plane, PlaneGeometry

from .corner_labels import CornerLabels
from .drawings import Drawing
from .marks import SliceMarks
from .overlays import (
    ADDED_RGB,
    MANUAL_RGB,
    PREDICTION_RGB,
    PREVIEW_REMOVE_RGB,
    PREVIEW_RGB,
    REMOVED_RGB,
    OverlayStyle,
    difference,
    labels_for,
    lut,
)
from .view_box import SliceViewBox
from .windowing import Windower, WindowLevel

if TYPE_CHECKING:  # for annotations only
    from core.annotation.click_segment import Click

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


class SliceView(QWidget):
    sliceChanged = Signal(int)
    windowDragged = Signal(float, float)  # right-drag dx, dy (screen pixels)
    cursorMoved = Signal(object)  # CursorInfo, or None when off the image
    editPressed = Signal(int, float, float)  # slice, image row, col (pixel centres are integers)
    editMoved = Signal(float, float)  # image row, col
    editReleased = Signal()
    editAltPressed = Signal(int, float, float)  # a right-click with an editing tool: slice, image row, col
    crosshairPicked = Signal(float, float)  # image row, col: move the linked cursor here
    windowChanged = Signal(object)  # WindowLevel (kept for callers of a single view)

    def __init__(self, plane: Plane = Plane.AXIAL, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plane = plane
        self.setObjectName(f"sliceView:{plane.value}" if plane is not Plane.AXIAL else "sliceView")
        self.view = pg.GraphicsView(background="k")
        self.view.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.view.setObjectName(f"graphics:{plane.value}")
        self.vb = SliceViewBox()
        self.view.setCentralItem(self.vb)
        self.slider = QSlider(Qt.Orientation.Vertical)
        self.slider.setObjectName(f"sliceSlider:{plane.value}" if plane is not Plane.AXIAL else "sliceSlider")
        self.slider.setEnabled(False)
        self.slider.setToolTip("Slice (wheel, arrows, PgUp/PgDn, Home/End)")
        self.slider.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # keys go to the view's shortcuts
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        lay.addWidget(self.view, 1)
        lay.addWidget(self.slider)

        self.ct_item = pg.ImageItem(axisOrder="row-major")
        self.manual_item = _label_item(lut(MANUAL_RGB), 1)
        self.pred_item = _label_item(lut(PREDICTION_RGB), 2)
        self.diff_item = _label_item(lut(ADDED_RGB, REMOVED_RGB), 3)
        self.preview_item = _label_item(lut(PREVIEW_RGB, PREVIEW_REMOVE_RGB), 4)
        self.preview_item.setOpacity(0.6)
        self._images = (self.ct_item, self.manual_item, self.pred_item, self.diff_item, self.preview_item)
        for item in self._images:
            self.vb.addItem(item)
        self.marks = SliceMarks(self.vb)  # crosshair, measurements, threshold box, brush outline

        self.labels = CornerLabels(self.view, plane)

        self.windower = Windower(WindowLevel(80, 40))
        self.styles = {"manual": OverlayStyle(), "prediction": OverlayStyle(opacity=0.9, outline=True)}
        self.difference_mode = False
        self.brush_mm: float | None = None
        self.hu: np.ndarray | None = None
        self.manual: np.ndarray | None = None
        self.prediction: np.ndarray | None = None
        self.preview: np.ndarray | None = None
        self.stack: AxialStack | None = None
        self.geo: PlaneGeometry | None = None
        self.k = 0
        self._cross: tuple[float, float] | None = None  # (row, col) in image pixels
        self._hover: tuple[int, int] | None = None  # (row, col) under the mouse
        self._last_mouse: QPointF | None = None
        self._drawings: dict[int, list[Drawing]] = {}  # slice -> drawings
        self._clicks: list[Click] = []  # the click tool's
        self._label_origin: dict[pg.ImageItem, tuple[int, int]] = {}  # overlay crops

        self.vb.sigSliceStep.connect(lambda d: self.set_slice(self.k + d))
        self.vb.sigWindowDrag.connect(self.windowDragged)
        self.vb.sigEditPress.connect(self._edit_press)
        self.vb.sigEditMove.connect(self._edit_move)
        self.vb.sigEditRelease.connect(self.editReleased)
        self.vb.sigEditAlt.connect(self._edit_alt)
        self.vb.sigCrosshair.connect(self._crosshair)
        self.view.scene().sigMouseMoved.connect(self._mouse_moved)
        self.slider.valueChanged.connect(self.set_slice)
        self._apply_styles()
        self.labels.place()

    # ----------------------------------------------------------- content
    @property
    def n_slices(self) -> int:
        return 0 if self.geo is None or self.hu is None else self.geo.n_slices

    @property
    def pixel_mm(self) -> tuple[float, float]:
        assert self.geo is not None
        return self.geo.pixel_mm

    def set_volume(
        self,
        hu: np.ndarray,
        stack: AxialStack,
        manual: np.ndarray | None,
        prediction: np.ndarray | None,
        k: int | None = None,
    ) -> None:
        """Show a new case (arrays in stack layout); the view keeps references, not copies."""
        self.hu, self.stack, self.manual, self.prediction = hu, stack, manual, prediction
        self.preview = None
        self.geo = PlaneGeometry(self.plane, tuple(hu.shape), stack.spacing)  # type: ignore[arg-type]
        sr, sc = self.geo.pixel_mm
        scale = QTransform.fromScale(sc, sr)
        for item in self._images:
            item.setTransform(scale)
        self.preview_item.clear()
        self.slider.blockSignals(True)
        self.slider.setRange(0, self.n_slices - 1)
        self.slider.setEnabled(True)
        self.slider.blockSignals(False)
        self.k = -1
        self.set_slice(self.n_slices // 2 if k is None else k)
        self.reset_zoom()

    def reset_zoom(self) -> None:
        if self.geo is None:
            return
        rows, cols = self.geo.image_shape
        sr, sc = self.geo.pixel_mm
        self.vb.setRange(QRectF(0, 0, cols * sc, rows * sr), padding=0.02)

    def zoom(self, factor: float) -> None:
        """Zoom about the centre of the view (factor > 1 zooms in)."""
        self.vb.scaleBy((1.0 / factor, 1.0 / factor))

    def set_prediction(self, prediction: np.ndarray | None) -> None:
        """Replace the prediction overlay (stack layout, same shape as the CT)."""
        self.prediction = prediction
        if prediction is None:
            self.pred_item.clear()
        self.refresh_overlays()

    def set_preview(self, preview: np.ndarray | None) -> None:
        """Show a pending change (a uint8 volume, 1 = would be added, 2 = would be removed) or none."""
        self.preview = preview
        self.refresh_overlays()

    def clear(self) -> None:
        self.hu = self.manual = self.prediction = self.stack = self.preview = None
        self.geo = None
        for item in self._images:
            item.clear()
        self.slider.setEnabled(False)
        self.labels["info"].setText("")
        self._hover = None
        self._cross = None
        self._drawings = {}
        self._clicks = []
        self.marks.clear()

    def image(self, volume: np.ndarray) -> np.ndarray:
        assert self.geo is not None
        return self.geo.image(volume, self.k)

    def set_slice(self, k: int) -> None:
        if self.hu is None or self.geo is None:
            return
        k = int(min(max(k, 0), self.n_slices - 1))
        if k == self.k:
            return
        self.k = k
        self.ct_item.setImage(self.windower.apply(self.image(self.hu)), autoLevels=False)
        self.refresh_overlays()
        if self.slider.value() != k:
            self.slider.blockSignals(True)
            self.slider.setValue(k)
            self.slider.blockSignals(False)
        self._update_info()
        self._draw_measurements()
        self._draw_clicks()
        self.sliceChanged.emit(k)

    def shows_voxels_of(self, slices: tuple[int, ...] | None) -> bool:
        """Whether a change on these axial slices (None: anywhere) is visible here."""
        if slices is None or self.plane is not Plane.AXIAL:
            return True  # every coronal/sagittal image crosses all axial slices
        return self.k in slices

    def refresh_overlays(self, slices: tuple[int, ...] | None = None) -> None:
        """Redraw the overlays of the shown slice (when the change ``slices`` can be seen)."""
        if self.hu is None or not self.shows_voxels_of(slices):
            return
        diff = self.difference_mode and self.prediction is not None and self.manual is not None
        self.diff_item.setVisible(diff)
        if diff:
            self.diff_item.setImage(difference(self.image(self.manual), self.image(self.prediction)), autoLevels=False)
        for item, arr, name in (
            (self.manual_item, self.manual, "manual"),
            (self.pred_item, self.prediction, "prediction"),
        ):
            show = not diff and arr is not None and self.styles[name].visible
            item.setVisible(show)
            if show:
                self._set_labels(item, labels_for(self.image(arr), self.styles[name]))
        self.preview_item.setVisible(self.preview is not None)
        if self.preview is not None:
            self._set_labels(self.preview_item, self.image(self.preview))

    def _set_labels(self, item: pg.ImageItem, labels: np.ndarray) -> None:
        """Show only the bounding box of the set pixels: painting a mostly transparent
        512 x 512 indexed image costs about 3x the CT's own (bench/bench_workstation.py)."""
        assert self.geo is not None
        rows = np.flatnonzero(labels.any(axis=1))
        if rows.size == 0:
            item.clear()
            self._label_origin[item] = (0, 0)
            return
        cols = np.flatnonzero(labels.any(axis=0))
        r0, r1, c0, c1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
        sr, sc = self.geo.pixel_mm
        item.setTransform(QTransform(sc, 0.0, 0.0, 0.0, sr, 0.0, c0 * sc, r0 * sr, 1.0))
        item.setImage(np.ascontiguousarray(labels[r0:r1, c0:c1]), autoLevels=False)
        self._label_origin[item] = (r0, c0)

    def shown_labels(self, item: pg.ImageItem) -> np.ndarray:
        """The full-slice label image an overlay item shows (for checks and tests)."""
        assert self.geo is not None
        full = np.zeros(self.geo.image_shape, np.uint8)
        if item.image is not None:
            r0, c0 = self._label_origin.get(item, (0, 0))
            h, w = item.image.shape
            full[r0 : r0 + h, c0 : c0 + w] = item.image
        return full

    # ----------------------------------------------------------- crosshair and drawings
    def set_crosshair(self, row: float, col: float) -> None:
        """Centre the crosshair on image pixel (row, col)."""
        if self.geo is None:
            return
        self._cross = (row, col)
        self.marks.set_crosshair(self.geo, row, col)

    def set_drawings(self, drawings: dict[int, list[Drawing]]) -> None:
        """Measurements to draw, by slice of this plane."""
        self._drawings = drawings
        self._draw_measurements()

    def _draw_measurements(self) -> None:
        self.marks.draw_measurements(self.geo, self._drawings.get(self.k, []))

    def set_clicks(self, clicks: list[Click]) -> None:
        """The click tool's clicks, each drawn on the slice of this view that holds it."""
        self._clicks = list(clicks)
        self._draw_clicks()

    def _draw_clicks(self) -> None:
        if self.geo is None:
            self.marks.draw_clicks(None, [])
            return
        shown = []
        for click in self._clicks:
            depth, row, col = self.geo.from_voxel((click.k, click.row, click.col))
            if int(depth) == self.k:
                shown.append((row, col, click.positive))
        self.marks.draw_clicks(self.geo, shown)

    def show_box(self, p0: tuple[float, float] | None, p1: tuple[float, float] | None = None) -> None:
        """The threshold box being dragged (image pixels), or none."""
        self.marks.show_box(self.geo, p0, p1)

    # ----------------------------------------------------------- display options
    @property
    def window(self) -> WindowLevel:
        return self.windower.window

    def set_window(self, wl: WindowLevel) -> None:
        self.windower.window = wl
        if self.hu is not None:
            self.ct_item.setImage(self.windower.apply(self.image(self.hu)), autoLevels=False)
        self.labels.set_text("window", str(wl))
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
    def to_pixel(self, p: QPointF) -> tuple[float, float]:
        """Image (row, col) of a point in view coordinates (mm)."""
        assert self.geo is not None
        sr, sc = self.geo.pixel_mm
        return p.y() / sr - 0.5, p.x() / sc - 0.5

    def _edit_press(self, p: QPointF) -> None:
        if self.hu is not None:
            row, col = self.to_pixel(p)
            self.editPressed.emit(self.k, row, col)

    def _edit_alt(self, p: QPointF) -> None:
        if self.hu is not None:
            row, col = self.to_pixel(p)
            self.editAltPressed.emit(self.k, row, col)

    def _edit_move(self, p: QPointF) -> None:
        if self.hu is not None:
            row, col = self.to_pixel(p)
            self.editMoved.emit(row, col)
            self._move_cursor(p)

    def _crosshair(self, p: QPointF) -> None:
        if self.hu is not None:
            self.crosshairPicked.emit(*self.to_pixel(p))

    def _mouse_moved(self, scene_pos: QPointF) -> None:
        if self.hu is None or self.stack is None:
            return
        p = self.vb.mapSceneToView(scene_pos)
        self._move_cursor(p)
        row_f, col_f = self.to_pixel(p)
        self._hover = (int(round(row_f)), int(round(col_f)))
        self.cursorMoved.emit(self._cursor_info())
        self._update_info()

    def _cursor_info(self) -> CursorInfo | None:
        """What is under the mouse on the shown slice (kept up to date on slice changes)."""
        if self._hover is None or self.hu is None or self.stack is None or self.geo is None:
            return None
        r, c = self._hover
        rows, cols = self.geo.image_shape
        if not (0 <= r < rows and 0 <= c < cols):
            return None
        k, row, col = (int(v) for v in self.geo.to_voxel(self.k, r, c))
        return CursorInfo(k, row, col, float(self.hu[k, row, col]), self.stack.world_mm(k, row, col))

    def _move_cursor(self, p: QPointF | None) -> None:
        self._last_mouse = p
        self.marks.show_brush(p if self.hu is not None else None, self.brush_mm)

    def enterEvent(self, ev):  # noqa: N802
        # keys follow the mouse into the viewer (as in ITK-SNAP): slice keys and undo
        # then act here even after a dialog or a panel had the focus
        if self.hu is not None and self.isActiveWindow():
            self.view.setFocus(Qt.FocusReason.MouseFocusReason)
        super().enterEvent(ev)

    def leaveEvent(self, ev):  # noqa: N802
        self._last_mouse = None
        self._hover = None
        self.marks.show_brush(None, None)
        self._update_info()
        super().leaveEvent(ev)

    # ----------------------------------------------------------- corner text
    def _update_info(self) -> None:
        if self.stack is None or self.geo is None:
            return
        if self.plane is Plane.AXIAL:
            text = f"Slice {self.k + 1} / {self.n_slices}   z = {self.stack.slice_z_mm(self.k):.1f} mm"
        else:
            text = f"Slice {self.k + 1} / {self.n_slices}"
        info = self._cursor_info()
        if info is not None:
            text += "\n" + info.text()
        self.labels.set_text("info", text)

    def resizeEvent(self, ev):  # noqa: N802
        super().resizeEvent(ev)
        self.labels.place()
