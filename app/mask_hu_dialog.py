"""Measure > Mask HU statistics per slice: a table, and a button to keep it."""

from __future__ import annotations

from typing import Callable

import numpy as np
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from core.cases.measurements import mask_hu_per_slice


class MaskHUDialog(QDialog):
    def __init__(
        self, hu: np.ndarray, mask: np.ndarray, keep: Callable[[], object], parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setObjectName("maskHuDialog")
        self.setWindowTitle("Mask HU statistics per axial slice")
        self.resize(560, 520)
        rows, overall = mask_hu_per_slice(hu, mask, axis=0)
        self.table = QTableWidget(len(rows), 6)
        self.table.setHorizontalHeaderLabels(["Slice", "Voxels", "Mean HU", "SD", "Min", "Max"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        for r, row in enumerate(rows):
            st = row.stats
            for c, text in enumerate(
                (str(row.slice + 1), str(st.n), f"{st.mean:.1f}", f"{st.sd:.1f}", f"{st.min:.0f}", f"{st.max:.0f}")
            ):
                self.table.setItem(r, c, QTableWidgetItem(text))
        summary = QLabel(f"Whole mask: {overall.text()}" if rows else "The mask is empty.")
        summary.setWordWrap(True)
        keep_button = QPushButton("Keep with the case's measurements")
        keep_button.setEnabled(bool(rows))
        keep_button.clicked.connect(lambda: (keep(), keep_button.setEnabled(False)))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(summary)
        lay.addWidget(self.table)
        lay.addWidget(keep_button)
        lay.addWidget(buttons)
