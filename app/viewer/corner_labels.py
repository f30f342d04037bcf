"""The text at a slice view's edges: orientation letters, plane name, slice and cursor
readout, window. Drawn as small labels over the graphics view."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QWidget

from core.annotation.planes import Plane

NAMES = ("left", "right", "top", "bottom", "info", "window", "plane")
MARGIN = 6
# a dark box behind every label: readable over bone and bright overlays at any zoom
LETTER_STYLE = "color: #ffd040; background: rgba(0, 0, 0, 150); font-weight: bold; padding: 0px 2px;"
TEXT_STYLE = "color: #e8e8e8; background: rgba(0, 0, 0, 150); padding: 1px 3px;"
SMALL_VIEW_PX = 420  # narrower than this: smaller text


def _corner(parent: QWidget, name: str) -> QLabel:
    lab = QLabel(parent)
    lab.setObjectName(name)
    lab.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
    lab.setStyleSheet(LETTER_STYLE)
    return lab


class CornerLabels(dict):
    """``labels["info"]`` etc.: a dict of the labels, placed by :meth:`place`."""

    def __init__(self, view: QWidget, plane: Plane) -> None:
        super().__init__({n: _corner(view, n) for n in NAMES})
        self.view = view
        for key, text in zip(("left", "right", "top", "bottom"), plane.corner_labels):
            self[key].setText(text)
        self["plane"].setText(plane.value.capitalize())
        self._small = False
        self._style_text()

    def _style_text(self) -> None:
        size = "font-size: 8pt;" if self._small else ""
        for key in ("info", "window", "plane"):
            self[key].setStyleSheet(TEXT_STYLE + size)

    def set_text(self, key: str, text: str) -> None:
        self[key].setText(text)
        self[key].adjustSize()
        self.place()

    def place(self) -> None:
        w, h = self.view.width(), self.view.height()
        m = MARGIN
        small = w < SMALL_VIEW_PX
        if small != self._small:
            self._small = small
            self._style_text()
        for one in self.values():
            one.adjustSize()
        self["left"].move(m, h // 2 - self["left"].height() // 2)
        self["right"].move(w - self["right"].width() - m, h // 2 - self["right"].height() // 2)
        self["top"].move(w // 2 - self["top"].width() // 2, m)
        self["bottom"].move(w // 2 - self["bottom"].width() // 2, h - self["bottom"].height() - m)
        self["plane"].move(m, m)
        self["info"].move(m, h - self["info"].height() - m)
        self["window"].move(w - self["window"].width() - m, h - self["window"].height() - m)
        self._untangle(w, m)

    def _untangle(self, w: int, m: int) -> None:
        """In a small view the texts would overlap: the window goes to the top-right corner,
        the top and bottom letters step aside from the texts, never over them."""
        info, window, top, bottom, plane = (self[k] for k in ("info", "window", "top", "bottom", "plane"))
        if window.isVisible() and info.geometry().intersects(window.geometry()):
            window.move(w - window.width() - m, m)
        lowest = [x for x in (info, window) if x.isVisible() and x.geometry().intersects(bottom.geometry())]
        if lowest:
            bottom.move(bottom.x(), min(x.y() for x in lowest) - bottom.height() - 2)
        highest = [x for x in (plane, window) if x.isVisible() and x.geometry().intersects(top.geometry())]
        if highest:
            top.move(top.x(), max(x.y() + x.height() for x in highest) + 2)
        for side in (self["left"], self["right"]):
            for other in (info, window, plane):
                if other.isVisible() and side.geometry().intersects(other.geometry()):
                    side.move(side.x(), other.y() - side.height() - 2)
