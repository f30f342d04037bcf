"""Small read-only tables of the ring and model panels."""

from __future__ import annotations

from typing import Sequence

from PySide6.QtWidgets import QHeaderView, QTableWidget, QTableWidgetItem


def read_only_table(name: str, columns: Sequence[str]) -> QTableWidget:
    """A table the user reads (and selects in), never edits; columns fit their contents."""
    table = QTableWidget(0, len(columns))
    table.setObjectName(name)
    table.setHorizontalHeaderLabels(list(columns))
    table.verticalHeader().setVisible(False)
    table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    return table


def set_row(table: QTableWidget, row: int, cells: Sequence[str]) -> None:
    for col, text in enumerate(cells):
        table.setItem(row, col, QTableWidgetItem(text))
