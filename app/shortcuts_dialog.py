"""Help > Keyboard shortcuts: every binding, read from the window itself.

The list is built from the QActions and QShortcuts that exist in the window
at the moment it is shown (their current keys, after preferences changed
presets), plus the mouse bindings of the views, so it cannot drift from what
the keys really do.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from .viewer.view_box import MOUSE_BINDINGS

WHERE = {
    Qt.ShortcutContext.WindowShortcut: "anywhere in the window",
    Qt.ShortcutContext.ApplicationShortcut: "anywhere in the application",
    Qt.ShortcutContext.WidgetWithChildrenShortcut: "in the image views",
    Qt.ShortcutContext.WidgetShortcut: "in its widget",
}


@dataclass(frozen=True)
class Binding:
    keys: str  # "Ctrl+Z" or "Up, Right"; mouse bindings describe the gesture
    command: str
    where: str


def _text(seqs) -> str:
    return ", ".join(s.toString(QKeySequence.SequenceFormat.PortableText) for s in seqs if not s.isEmpty())


def key_bindings(window: QWidget) -> list[Binding]:
    """Every QAction and QShortcut with keys in ``window``, sorted by command."""
    out = []
    for act in window.findChildren(QAction):
        keys = _text(act.shortcuts())
        if keys:
            out.append(Binding(keys, act.text().replace("&", ""), WHERE[act.shortcutContext()]))
    for sc in window.findChildren(QShortcut):
        keys = _text([sc.key()])
        if keys:
            out.append(Binding(keys, sc.whatsThis() or sc.objectName(), WHERE[sc.context()]))
    return sorted(out, key=lambda b: b.command.lower())


def all_bindings(window: QWidget) -> list[Binding]:
    return key_bindings(window) + [Binding(g, what, "in the image views") for g, what in MOUSE_BINDINGS]


class ShortcutsDialog(QDialog):
    def __init__(self, window: QWidget) -> None:
        super().__init__(window)
        self.setObjectName("shortcutsDialog")
        self.setWindowTitle("Keyboard shortcuts and mouse")
        self.resize(720, 640)
        self.bindings = all_bindings(window)
        self.table = QTableWidget(len(self.bindings), 3)
        self.table.setObjectName("shortcutsTable")
        self.table.setHorizontalHeaderLabels(["Keys / mouse", "Command", "Works"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        for row, b in enumerate(self.bindings):
            for col, text in enumerate((b.keys, b.command, b.where)):
                self.table.setItem(row, col, QTableWidgetItem(text))
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.table.resizeColumnToContents(0)
        self.table.resizeColumnToContents(2)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(self.table)
        lay.addWidget(buttons)

    def rows(self) -> list[tuple[str, str, str]]:
        t = self.table
        return [tuple(t.item(r, c).text() for c in range(3)) for r in range(t.rowCount())]  # type: ignore[misc]
