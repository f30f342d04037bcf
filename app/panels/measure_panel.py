"""Contouring helpers and measurements: interpolation, 3-D fill and its limit,
the measuring tools, and the case's list of measurements."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QListWidget,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from core.cases.measurements import Measurement, describe

from .tools_panel import action_button


class MeasurePanel(QGroupBox):
    removeRequested = Signal(int)  # row in the list
    limitChanged = Signal(float)  # fill limit, mL

    def __init__(self, va, fill_limit_ml: float, parent: QWidget | None = None) -> None:
        super().__init__("Contouring and measuring", parent)
        self.setObjectName("measurePanel")
        grid = QGridLayout()
        for n, act in enumerate((va.interpolate, va.fill_3d, *va.measure.values(), va.mask_hu)):
            grid.addWidget(action_button(act), n // 2, n % 2)
        self.limit = QDoubleSpinBox()
        self.limit.setObjectName("fillLimit")
        self.limit.setRange(0.1, 500.0)
        self.limit.setDecimals(1)
        self.limit.setSuffix(" mL")
        self.limit.setValue(fill_limit_ml)
        self.limit.setToolTip(
            "A fill larger than this is cut to the part nearest the click and asks before adding the rest"
        )
        self.limit.valueChanged.connect(self.limitChanged)
        form = QFormLayout()
        form.addRow("Fill limit", self.limit)
        self.list = QListWidget()
        self.list.setObjectName("measurementList")
        self.list.setWordWrap(True)
        self.list.setMinimumHeight(90)
        remove = QPushButton("Delete selected measurement")
        remove.clicked.connect(
            lambda: self.list.currentRow() >= 0 and self.removeRequested.emit(self.list.currentRow())
        )
        lay = QVBoxLayout(self)
        lay.addLayout(grid)
        lay.addLayout(form)
        lay.addWidget(self.list)
        lay.addWidget(remove)

    def show_measurements(self, items: list[Measurement]) -> None:
        self.list.clear()
        for m in items:
            self.list.addItem(describe(m))
