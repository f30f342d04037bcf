"""Mouse routing for a slice view.

- wheel: next/previous slice (Ctrl+wheel zooms)
- left button, by mode: ``crosshair`` (click or drag moves the linked cursor),
  ``pan`` (drag pans), ``tool`` (the current editing or measuring tool)
- middle button: pans
- right-drag: window width (horizontal) and level (vertical); no context menu
Positions leave this class in view coordinates (millimetres in the slice plane).
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, Signal

LEFT_MODES = ("crosshair", "pan", "tool")

# What the mouse does, listed in Help > Keyboard shortcuts (the mouse has no QAction).
MOUSE_BINDINGS = (
    ("Wheel", "Next / previous slice"),
    ("Ctrl+Wheel", "Zoom"),
    ("Left click / drag (Crosshair tool)", "Move the crosshair: the other views follow"),
    ("Left drag (Pan mode)", "Pan"),
    ("Left click / drag (a tool)", "Paint, fill or measure with the chosen tool"),
    ("Left click (Click bleed)", "A click inside a bleed: the model draws it (preview)"),
    ("Shift+left click or right click (Click bleed)", "A click where it is not blood: the model takes it out"),
    ("Middle drag", "Pan"),
    ("Right drag", "Window: right/left = wider/narrower, up/down = level up/down"),
)


class SliceViewBox(pg.ViewBox):
    sigSliceStep = Signal(int)
    sigWindowDrag = Signal(float, float)  # dx, dy in screen pixels (dy > 0: mouse moved up)
    sigEditPress = Signal(QPointF)
    sigEditMove = Signal(QPointF)
    sigEditRelease = Signal()
    sigEditAlt = Signal(QPointF)  # a right-click with an editing tool (the click tool's negative click)
    sigCrosshair = Signal(QPointF)

    def __init__(self) -> None:
        super().__init__(lockAspect=True, invertY=False, enableMenu=False)
        self.left_mode = "crosshair"

    @property
    def edit_enabled(self) -> bool:
        return self.left_mode == "tool"

    @edit_enabled.setter
    def edit_enabled(self, on: bool) -> None:
        self.left_mode = "tool" if on else "crosshair"

    def wheelEvent(self, ev, axis=None):  # noqa: N802 - Qt naming
        if ev.modifiers() & Qt.KeyboardModifier.ControlModifier:
            super().wheelEvent(ev, axis)
            return
        delta = ev.delta()
        if delta:
            self.sigSliceStep.emit(1 if delta > 0 else -1)
        ev.accept()

    def mouseDragEvent(self, ev, axis=None):  # noqa: N802
        button = ev.button()
        if button == Qt.MouseButton.RightButton:
            d = ev.screenPos() - ev.lastScreenPos()
            self.sigWindowDrag.emit(float(d.x()), float(-d.y()))
            ev.accept()
            return
        if button == Qt.MouseButton.LeftButton and self.left_mode == "tool":
            ev.accept()
            if ev.isStart():
                self.sigEditPress.emit(self.mapToView(ev.buttonDownPos()))
            self.sigEditMove.emit(self.mapToView(ev.pos()))
            if ev.isFinish():
                self.sigEditRelease.emit()
            return
        if button == Qt.MouseButton.LeftButton and self.left_mode == "crosshair":
            ev.accept()
            self.sigCrosshair.emit(self.mapToView(ev.pos()))
            return
        super().mouseDragEvent(ev, axis)

    def mouseClickEvent(self, ev):  # noqa: N802
        if ev.button() == Qt.MouseButton.LeftButton and self.left_mode == "tool":
            ev.accept()
            self.sigEditPress.emit(self.mapToView(ev.pos()))
            self.sigEditRelease.emit()
            return
        if ev.button() == Qt.MouseButton.LeftButton and self.left_mode == "crosshair":
            ev.accept()
            self.sigCrosshair.emit(self.mapToView(ev.pos()))
            return
        if ev.button() == Qt.MouseButton.RightButton:
            ev.accept()
            if self.left_mode == "tool":
                self.sigEditAlt.emit(self.mapToView(ev.pos()))
            return
        super().mouseClickEvent(ev)
