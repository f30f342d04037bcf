"""Run something once a widget has been painted for the first time from now on.

Work that would compete with a first paint for the interpreter (loading torch
on a worker, the ring's first check, a case's prediction) waits for it: the
reader sees the window, or the case, first.
"""

from __future__ import annotations

from typing import Callable

from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QWidget


class FirstPaint(QObject):
    """Calls ``then`` once, ``delay_ms`` after the next paint of ``widget`` has finished."""

    def __init__(self, widget: QWidget, then: Callable[[], None], delay_ms: int = 0) -> None:
        super().__init__(widget)
        self._then: Callable[[], None] | None = then
        self._delay = delay_ms
        widget.installEventFilter(self)
        widget.update()  # make sure a paint comes

    def eventFilter(self, obj, ev) -> bool:  # noqa: N802
        if ev.type() == QEvent.Type.Paint and self._then is not None:
            then, self._then = self._then, None
            obj.removeEventFilter(self)
            QTimer.singleShot(self._delay, then)  # after this paint has finished
            self.deleteLater()
        return False


def after_first_paint(widget: QWidget, then: Callable[[], None], delay_ms: int = 0) -> FirstPaint:
    return FirstPaint(widget, then, delay_ms)
