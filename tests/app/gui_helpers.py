"""Helpers for the GUI tests: open a case, mouse events on the slice view."""

from __future__ import annotations

from pathlib import Path


def open_case(qtbot, w, folder: Path, label: str = "067"):
    if w.worklist is None or w.worklist.folder != folder:
        w.open_folder(folder)
    with qtbot.waitSignal(w.controller.opened, timeout=20000):
        w.open_label(label)
    return w.controller.session


def wait_until(qtbot, cond, timeout_ms: int = 10000) -> None:
    qtbot.waitUntil(cond, timeout=timeout_ms)


# ------------------------------------------------------------------ mouse
def pos_in(view, row: float, col: float):
    """Where pixel (row, col) of a slice view's shown slice is, in its viewport."""
    from PySide6.QtCore import QPointF

    sr, sc = view.pixel_mm
    scene = view.vb.mapViewToScene(QPointF((col + 0.5) * sc, (row + 0.5) * sr))
    # unrounded: a view smaller than the image has screen pixels larger than image pixels
    return view.view.viewportTransform().map(scene)


def mouse_in(view, kind: str, row: float, col: float, button=None) -> None:
    """A mouse press, move or release on pixel (row, col) of a slice view."""
    from PySide6.QtCore import QEvent, QPointF, Qt
    from PySide6.QtGui import QMouseEvent
    from PySide6.QtWidgets import QApplication

    button = button or Qt.MouseButton.LeftButton
    vp = view.view.viewport()
    pos = QPointF(pos_in(view, row, col))
    types = {
        "press": QEvent.Type.MouseButtonPress,
        "move": QEvent.Type.MouseMove,
        "release": QEvent.Type.MouseButtonRelease,
    }
    held = Qt.MouseButton.NoButton if kind == "release" else button
    ev = QMouseEvent(
        types[kind],
        pos,
        vp.mapToGlobal(pos),
        Qt.MouseButton.NoButton if kind == "move" else button,
        held,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(vp, ev)


def viewport_pos(w, row: float, col: float):
    """Where pixel (row, col) of the window's axial view is, in its viewport."""
    return pos_in(w.view, row, col)


def send_mouse(w, kind: str, row: float, col: float, button=None) -> None:
    mouse_in(w.view, kind, row, col, button)


def drag(w, points: list[tuple[float, float]], button=None) -> None:
    """Press at the first point, move through the others, release at the last."""
    send_mouse(w, "press", *points[0], button=button)
    for p in points[1:]:
        send_mouse(w, "move", *p, button=button)
    send_mouse(w, "release", *points[-1], button=button)


def click(w, row: float, col: float) -> None:
    send_mouse(w, "press", row, col)
    send_mouse(w, "release", row, col)
