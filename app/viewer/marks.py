"""What a slice view draws over the image: the crosshair at the linked cursor, the
measurements of the shown slice with their captions, the threshold box being
dragged, the brush outline under the mouse and the click tool's clicks on the
shown slice (a ringed plus where the reviewer said "bleed", a ringed minus
where they said "not bleed": the sign, not only the colour, tells them apart).

Positions come in image pixels ``(row, col)`` of the shown slice (pixel centres
are integers) and are drawn in view coordinates, millimetres in the slice plane
(:class:`~core.annotation.planes.PlaneGeometry` gives the pixel size). Plain
Qt path items: pyqtgraph's InfiniteLine and dashed pens cost milliseconds per
paint (bench/bench_workstation.py).
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsEllipseItem, QGraphicsPathItem, QGraphicsRectItem

from core.annotation.planes import PlaneGeometry

from .drawings import CAPTION_FILL, MEASURE_RGB, Drawing, drawing_path
from .overlays import PREVIEW_REMOVE_RGB, PREVIEW_RGB

CROSSHAIR_RGB = (80, 200, 120)
CLICK_MARK_MM = 2.5  # radius of a click's ring; the sign inside is half of it


def _pen(rgb: tuple[int, int, int], width: float = 1.0, dash: bool = False) -> QPen:
    pen = QPen(QColor(*rgb))
    pen.setCosmetic(True)
    pen.setWidthF(width)
    if dash:
        pen.setStyle(Qt.PenStyle.DashLine)
    return pen


def scene_point(geo: PlaneGeometry, row: float, col: float) -> QPointF:
    """The view position (mm) of the centre of image pixel (row, col)."""
    sr, sc = geo.pixel_mm
    return QPointF((col + 0.5) * sc, (row + 0.5) * sr)


class SliceMarks:
    """The marks of one slice view, as items of its view box."""

    def __init__(self, vb: pg.ViewBox) -> None:
        self.vb = vb
        self.brush_outline = QGraphicsEllipseItem()
        self.brush_outline.setPen(_pen(MEASURE_RGB))
        self.brush_outline.setZValue(10)
        self.brush_outline.hide()
        vb.addItem(self.brush_outline)
        self.crosshair = QGraphicsPathItem()  # a plain path across the image (see the module docstring)
        self.crosshair.setPen(_pen(CROSSHAIR_RGB))
        self.crosshair.setOpacity(0.7)
        self.crosshair.setZValue(8)
        self.crosshair.hide()
        vb.addItem(self.crosshair, ignoreBounds=True)
        self.measure_path = QGraphicsPathItem()
        self.measure_path.setPen(_pen(MEASURE_RGB, 1.5))
        self.measure_path.setZValue(9)
        vb.addItem(self.measure_path)
        self.box = QGraphicsRectItem()  # threshold box while dragging
        self.box.setPen(_pen(MEASURE_RGB, 1.0, dash=True))
        self.box.setZValue(9)
        self.box.hide()
        vb.addItem(self.box)
        self._captions: list[pg.TextItem] = []
        # the click tool's clicks: the preview's own colours (yellow adds, purple removes)
        # (each over a dark halo: a click sits on its own preview, in the same colour)
        self.clicks: dict[bool, QGraphicsPathItem] = {}
        self._click_halos: dict[bool, QGraphicsPathItem] = {}
        for positive, rgb in ((True, PREVIEW_RGB), (False, PREVIEW_REMOVE_RGB)):
            for items, pen, z in ((self._click_halos, _pen((0, 0, 0), 4.0), 12), (self.clicks, _pen(rgb, 2.0), 13)):
                item = QGraphicsPathItem()
                item.setPen(pen)
                item.setZValue(z)
                vb.addItem(item, ignoreBounds=True)
                items[positive] = item

    def clear(self) -> None:
        """A view without a case: no brush outline, crosshair or measurements."""
        self.brush_outline.hide()
        self.crosshair.hide()
        self.draw_measurements(None, [])
        self.draw_clicks(None, [])

    def set_crosshair(self, geo: PlaneGeometry, row: float, col: float) -> None:
        """Centre the crosshair on image pixel (row, col)."""
        sr, sc = geo.pixel_mm
        rows, cols = geo.image_shape
        y, x = (row + 0.5) * sr, (col + 0.5) * sc
        path = QPainterPath()
        path.moveTo(0.0, y)
        path.lineTo(cols * sc, y)
        path.moveTo(x, 0.0)
        path.lineTo(x, rows * sr)
        self.crosshair.setPath(path)
        self.crosshair.show()

    def draw_measurements(self, geo: PlaneGeometry | None, drawings: list[Drawing]) -> None:
        """Draw ``drawings`` (those of the shown slice), replacing what was drawn."""
        for cap in self._captions:
            self.vb.removeItem(cap)
        self._captions = []
        if geo is None:
            self.measure_path.setPath(QPainterPath())
            return
        path, captions = drawing_path(drawings, lambda r, c: scene_point(geo, r, c), geo.pixel_mm)
        for text, pos in captions:
            cap = pg.TextItem(text, color=MEASURE_RGB, anchor=(0, 1), fill=pg.mkBrush(*CAPTION_FILL))
            cap.setPos(pos)
            cap.setZValue(11)
            self.vb.addItem(cap, ignoreBounds=True)
            self._captions.append(cap)
        self.measure_path.setPath(path)

    def draw_clicks(self, geo: PlaneGeometry | None, clicks: list[tuple[float, float, bool]]) -> None:
        """The clicks ``(row, col, positive)`` of the shown slice, replacing those drawn."""
        paths = {True: QPainterPath(), False: QPainterPath()}
        if geo is not None:
            r, h = CLICK_MARK_MM, CLICK_MARK_MM / 2
            for row, col, positive in clicks:
                p = scene_point(geo, row, col)
                path = paths[positive]
                path.addEllipse(p, r, r)
                path.moveTo(p.x() - h, p.y())
                path.lineTo(p.x() + h, p.y())
                if positive:
                    path.moveTo(p.x(), p.y() - h)
                    path.lineTo(p.x(), p.y() + h)
        for positive, path in paths.items():
            self.clicks[positive].setPath(path)
            self._click_halos[positive].setPath(path)

    def show_box(
        self, geo: PlaneGeometry | None, p0: tuple[float, float] | None, p1: tuple[float, float] | None
    ) -> None:
        """The threshold box being dragged between image pixels p0 and p1 (whole pixels), or none."""
        if p0 is None or p1 is None or geo is None:
            self.box.hide()
            return
        a, b = scene_point(geo, *p0), scene_point(geo, *p1)
        sr, sc = geo.pixel_mm
        self.box.setRect(QRectF(a, b).normalized().adjusted(-sc / 2, -sr / 2, sc / 2, sr / 2))
        self.box.show()

    def show_brush(self, p: QPointF | None, diameter_mm: float | None) -> None:
        """The brush outline centred on view point ``p`` (mm), or none."""
        if p is None or diameter_mm is None:
            self.brush_outline.hide()
            return
        r = diameter_mm / 2.0
        self.brush_outline.setRect(QRectF(p.x() - r, p.y() - r, 2 * r, 2 * r))
        self.brush_outline.show()
