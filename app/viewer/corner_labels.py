"""The text at a slice view's edges: orientation letters, plane name, slice and cursor
readout, window. Drawn as small labels over the graphics view."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QWidget

from core.annotation.planes import Plane

NAMES = ("left", "right", "top", "bottom", "info", "window", "plane")
MARGIN = 6


def _corner(parent: QWidget, name: str) -> QLabel:
    lab = QLabel(parent)
    lab.setObjectName(name)
    lab.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
    lab.setStyleSheet("color: #ffd040; background: transparent; font-weight: bold;")
    return lab


class CornerLabels(dict):
    """``labels["info"]`` etc.: a dict of the labels, placed by :meth:`place`."""

    def __init__(self, view: QWidget, plane: Plane) -> None:
        super().__init__({n: _corner(view, n) for n in NAMES})
        self.view = view
        for key, text in zip(("left", "right", "top", "bottom"), plane.corner_labels):
            self[key].setText(text)
        self["plane"].setText(plane.value.capitalize())
        for key in ("info", "window", "plane"):
            self[key].setStyleSheet("color: #e8e8e8; background: transparent;")

    def set_text(self, key: str, text: str) -> None:
        self[key].setText(text)
        self[key].adjustSize()
        self.place()

    def place(self) -> None:
        w, h = self.view.width(), self.view.height()
        m = MARGIN
        for one in self.values():
            one.adjustSize()
        self["left"].move(m, h // 2 - self["left"].height() // 2)
        self["right"].move(w - self["right"].width() - m, h // 2 - self["right"].height() // 2)
        self["top"].move(w // 2 - self["top"].width() // 2, m)
        self["bottom"].move(w // 2 - self["bottom"].width() // 2, h - self["bottom"].height() - m)
        self["plane"].move(m, m)
        self["info"].move(m, h - self["info"].height() - m)
        self["window"].move(w - self["window"].width() - m, h - self["window"].height() - m)
