"""The model in use's prediction when it is not the case's own: both volumes and
models side by side, "Show it" (the overlay shows it instead while checked) and
"Use it for this case" (the case's prediction it replaces is kept beside)."""

from __future__ import annotations

import html

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget


class CandidateBox(QWidget):
    showToggled = Signal(bool)
    useRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("candidateBox")
        self.text = QLabel("")
        self.text.setObjectName("candidateText")
        self.text.setWordWrap(True)
        self.show_button = QPushButton("Show it")
        self.show_button.setObjectName("showCandidate")
        self.show_button.setCheckable(True)
        self.show_button.setToolTip("Show the new prediction instead of the case's while pressed")
        self.use_button = QPushButton("Use it for this case")
        self.use_button.setObjectName("useCandidate")
        self.use_button.setToolTip("The case's prediction is kept beside the case's files, never deleted")
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.show_button)
        row.addWidget(self.use_button)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.text)
        lay.addLayout(row)
        self.show_button.toggled.connect(self.showToggled)
        self.use_button.clicked.connect(self.useRequested)
        self.hide()

    def offer(self, new_label: str, new_ml: float, case_label: str, case_ml: float | None) -> None:
        now = f"{case_ml:.2f} mL" if case_ml is not None else "no volume"
        self.text.setText(
            f"<b>New prediction</b> by {html.escape(new_label)}: <b>{new_ml:.2f} mL</b>.<br>"
            f"This case's prediction: {now} by {html.escape(case_label)}."
        )
        self.show_button.setChecked(False)
        self.show()

    def clear(self) -> None:
        self.show_button.setChecked(False)
        self.text.setText("")
        self.hide()
