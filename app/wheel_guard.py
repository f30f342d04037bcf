"""Spin boxes, combo boxes and sliders that ignore the mouse wheel unless they have the focus.

Scrolling a panel must never change a setting on the way (a fill limit of 5 mL
silently became 18 mL); a click (or Tab) gives the control the focus, then the
wheel works as usual.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import (
    QAbstractScrollArea,
    QAbstractSlider,
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QScrollBar,
    QWidget,
)

GUARDED = (QAbstractSpinBox, QComboBox, QAbstractSlider)


class _WheelGuard(QObject):
    def eventFilter(self, obj: QObject, ev: QEvent) -> bool:  # noqa: N802
        if ev.type() != QEvent.Type.Wheel or not isinstance(obj, QWidget) or obj.hasFocus():
            return False
        area = obj.parentWidget()
        while area is not None and not isinstance(area, QAbstractScrollArea):
            area = area.parentWidget()
        if area is not None and area.verticalScrollBar() is not obj:  # the panel scrolls instead
            QApplication.sendEvent(area.verticalScrollBar(), ev)
        return True


_GUARD = _WheelGuard()


def guard_wheel(widget: QWidget) -> None:
    """``widget`` takes the wheel only when focused (and takes the focus by click or Tab only)."""
    widget.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
    widget.installEventFilter(_GUARD)


def guard_wheel_below(root: QWidget) -> int:
    """Guard every spin box, combo box and slider inside ``root`` (not the scroll bars, which
    are there to take the wheel); returns how many."""
    found = [w for w in root.findChildren(QWidget) if isinstance(w, GUARDED) and not isinstance(w, QScrollBar)]
    for w in found:
        guard_wheel(w)
    return len(found)
