"""Mouse routing for the slice view.

- wheel: next/previous slice (Ctrl+wheel zooms)
- left button: paints with the current editing tool; pans when no tool is active
- middle button: pans
- right-drag: window width (horizontal) and level (vertical); no context menu
Positions leave this class in view coordinates (millimetres in the slice plane).
"""
from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, Signal


class SliceViewBox(pg.ViewBox):
    sigSliceStep = Signal(int)
    sigWindowDrag = Signal(float, float)  # dx, dy in screen pixels (dy > 0: mouse moved up)
    sigEditPress = Signal(QPointF)
    sigEditMove = Signal(QPointF)
    sigEditRelease = Signal()

    def __init__(self) -> None:
        super().__init__(lockAspect=True, invertY=False, enableMenu=False)
        self.edit_enabled = False  # an editing tool is active

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
        if button == Qt.MouseButton.LeftButton and self.edit_enabled:
            ev.accept()
            if ev.isStart():
                self.sigEditPress.emit(self.mapToView(ev.buttonDownPos()))
            self.sigEditMove.emit(self.mapToView(ev.pos()))
            if ev.isFinish():
                self.sigEditRelease.emit()
            return
        super().mouseDragEvent(ev, axis)

    def mouseClickEvent(self, ev):  # noqa: N802
        if ev.button() == Qt.MouseButton.LeftButton and self.edit_enabled:
            ev.accept()
            self.sigEditPress.emit(self.mapToView(ev.pos()))
            self.sigEditRelease.emit()
            return
        if ev.button() == Qt.MouseButton.RightButton:
            ev.accept()
            return
        super().mouseClickEvent(ev)
