"""A path field with a "Browse…" button beside it, for the settings dialogs."""

from __future__ import annotations

from typing import Callable

from PySide6.QtWidgets import QHBoxLayout, QLineEdit, QPushButton, QWidget


def with_browse(edit: QLineEdit, pick: Callable[[], str]) -> QWidget:
    """``edit`` with a Browse… button that puts what ``pick`` returns into it (nothing when
    the user cancelled the file dialog)."""
    w = QWidget()
    lay = QHBoxLayout(w)
    lay.setContentsMargins(0, 0, 0, 0)
    lay.addWidget(edit, 1)
    b = QPushButton("Browse…")
    b.clicked.connect(lambda: (lambda path: edit.setText(path) if path else None)(pick()))
    lay.addWidget(b)
    return w
