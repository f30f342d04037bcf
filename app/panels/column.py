"""A dock's content: panels stacked top-down in a vertically scrolling area."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QScrollArea, QVBoxLayout, QWidget


def panel_column(*panels: QWidget) -> QScrollArea:
    column = QWidget()
    lay = QVBoxLayout(column)
    for panel in panels:
        lay.addWidget(panel)
    lay.addStretch(1)
    scroll = QScrollArea()
    scroll.setWidgetResizable(True)
    scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    scroll.setWidget(column)
    return scroll
