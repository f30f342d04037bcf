"""Measurements drawn on a slice view: their lines and circles as one path, their captions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from PySide6.QtCore import QPointF
from PySide6.QtGui import QPainterPath

MEASURE_RGB = (255, 230, 0)
# captions sit on a dark box so they stay readable over bone and bright overlays
CAPTION_FILL = (0, 0, 0, 170)


@dataclass(frozen=True)
class Drawing:
    """A measurement drawn on one view: polyline(s) in image pixels, a circle, a caption."""

    lines: tuple[tuple[tuple[float, float], ...], ...]  # each a run of (row, col) points
    circle: tuple[float, float, float, float] | None = None  # centre row, col, radii mm (row, col)
    caption: str = ""


def drawing_path(
    drawings: list[Drawing], scene: Callable[[float, float], QPointF], pixel_mm: tuple[float, float]
) -> tuple[QPainterPath, list[tuple[str, QPointF]]]:
    """The path of ``drawings`` in scene coordinates, and each caption with where it goes."""
    path = QPainterPath()
    captions: list[tuple[str, QPointF]] = []
    for d in drawings:
        for run in d.lines:
            if run:
                path.moveTo(scene(*run[0]))
                for p in run[1:]:
                    path.lineTo(scene(*p))
                for p in run:  # end ticks: small circles at the placed points
                    path.addEllipse(scene(*p), 0.6, 0.6)
        anchor = d.lines[0][-1] if d.lines and d.lines[0] else None
        if d.circle is not None:
            r, c, rad_r, rad_c = d.circle
            path.addEllipse(scene(r, c), rad_c, rad_r)
            anchor = (r + rad_r / pixel_mm[0], c)
        if d.caption and anchor is not None:
            captions.append((d.caption, scene(*anchor)))
    return path, captions
