"""A warning shown over the slice view (e.g. an implausible prediction), in red,
in the view's upper middle, so it is seen where the overlay is looked at."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import QLabel, QWidget


class ViewWarning(QLabel):
    def __init__(self, over: QWidget) -> None:
        super().__init__(over)
        self.setObjectName("viewWarning")
        self.setStyleSheet("color: #ffffff; background: rgba(180, 20, 20, 210); padding: 4px;font-weight: bold;")
        self.setWordWrap(True)
        self.hide()
        over.installEventFilter(self)

    def show_warning(self, text: str) -> None:
        self.setText(text)
        self.setVisible(bool(text))
        self._place()

    def eventFilter(self, obj: QObject, ev: QEvent) -> bool:  # noqa: N802
        if ev.type() == QEvent.Type.Resize:
            self._place()
        return False

    def _place(self) -> None:
        parent = self.parentWidget()
        width = max(200, int(parent.width() * 0.6))
        self.setFixedWidth(width)
        self.adjustSize()
        self.move((parent.width() - width) // 2, 28)
        self.raise_()
