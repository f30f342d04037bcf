"""What a slice view draws over the image: the crosshair at the linked cursor, the
measurements of the shown slice with their captions, the threshold box being
dragged and the brush outline under the mouse.

Positions come in image pixels ``(row, col)`` of the shown slice (pixel centres
are integers) and are drawn in view coordinates, millimetres in the slice plane
(:class:`~core.annotation.planes.PlaneGeometry` gives the pixel size). Plain
Qt path items: pyqtgraph's InfiniteLine and dashed pens cost milliseconds per
paint (bench/bench_workstation.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsEllipseItem, QGraphicsPathItem, QGraphicsRectItem

from core.annotation.planes import PlaneGeometry

CROSSHAIR_RGB = (80, 200, 120)
MEASURE_RGB = (255, 230, 0)


@dataclass(frozen=True)
class Drawing:
    """A measurement drawn on one view: polyline(s) in image pixels, a circle, a caption."""

    lines: tuple[tuple[tuple[float, float], ...], ...]  # each a run of (row, col) points
    circle: tuple[float, float, float, float] | None = None  # centre row, col, radii mm (row, col)
    caption: str = ""


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

    def clear(self) -> None:
        """A view without a case: no brush outline, crosshair or measurements."""
        self.brush_outline.hide()
        self.crosshair.hide()
        self.draw_measurements(None, [])

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
        path = QPainterPath()
        if geo is not None:
            for d in drawings:
                self._draw_one(geo, d, path)
        self.measure_path.setPath(path)

    def _draw_one(self, geo: PlaneGeometry, d: Drawing, path: QPainterPath) -> None:
        for run in d.lines:
            if run:
                path.moveTo(scene_point(geo, *run[0]))
                for p in run[1:]:
                    path.lineTo(scene_point(geo, *p))
                for p in run:  # end ticks: small crosses at the placed points
                    path.addEllipse(scene_point(geo, *p), 0.6, 0.6)
        anchor = d.lines[0][-1] if d.lines and d.lines[0] else None
        if d.circle is not None:
            r, c, rad_r, rad_c = d.circle
            path.addEllipse(scene_point(geo, r, c), rad_c, rad_r)
            anchor = (r + rad_r / geo.pixel_mm[0], c)
        if d.caption and anchor is not None:
            cap = pg.TextItem(d.caption, color=MEASURE_RGB, anchor=(0, 1))
            cap.setPos(scene_point(geo, *anchor))
            cap.setZValue(11)
            self.vb.addItem(cap, ignoreBounds=True)
            self._captions.append(cap)

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
