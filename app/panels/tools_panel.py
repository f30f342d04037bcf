"""Editing tools: tool buttons, brush size, blood HU range, undo/redo, save."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ..actions import Actions


def action_button(action) -> QToolButton:
    """A full-width text button for an action (the tool and measure panels' grids)."""
    b = QToolButton()
    b.setDefaultAction(action)
    b.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
    b.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
    return b


class ToolsPanel(QGroupBox):
    brushChanged = Signal(float)  # diameter, mm
    rangeChanged = Signal(float, float)  # HU

    def __init__(
        self, actions: Actions, brush_mm: float, low_hu: float, high_hu: float, parent: QWidget | None = None
    ) -> None:
        super().__init__("Editing", parent)
        self.setObjectName("toolsPanel")
        grid = QGridLayout()
        for n, action in enumerate(actions.tools.values()):
            grid.addWidget(action_button(action), n // 2, n % 2)
        self.brush = QDoubleSpinBox()
        self.brush.setObjectName("brushSize")
        self.brush.setRange(0.5, 100.0)
        self.brush.setSingleStep(0.5)
        self.brush.setSuffix(" mm")
        self.brush.setValue(brush_mm)
        self.brush.setToolTip("Brush diameter in millimetres ([ and ] change it)")
        self.low, self.high = QDoubleSpinBox(), QDoubleSpinBox()
        for box, value, name in ((self.low, low_hu, "huLow"), (self.high, high_hu, "huHigh")):
            box.setObjectName(name)
            box.setRange(-1024, 3000)
            box.setDecimals(0)
            box.setSuffix(" HU")
            box.setValue(value)
            box.setToolTip("HU range of the blood brush and the fill (acute blood about 40-90 HU)")
            box.valueChanged.connect(lambda _v: self.rangeChanged.emit(self.low.value(), self.high.value()))
        self.brush.valueChanged.connect(self.brushChanged)
        hu_row = QHBoxLayout()
        hu_row.addWidget(self.low)
        hu_row.addWidget(QLabel("to"))
        hu_row.addWidget(self.high)
        form = QFormLayout()
        form.addRow("Brush size", self.brush)
        form.addRow("Blood range", hu_row)
        edit_row = QHBoxLayout()
        for a in (actions.undo, actions.redo, actions.save):
            edit_row.addWidget(action_button(a))
        lay = QVBoxLayout(self)
        lay.addLayout(grid)
        lay.addLayout(form)
        lay.addWidget(action_button(actions.accept_all))
        lay.addWidget(action_button(actions.islands))  # issue 26: the mask's separate parts
        lay.addLayout(edit_row)
        self.state = QLabel("")
        self.state.setObjectName("editState")
        self.state.setWordWrap(True)
        lay.addWidget(self.state)

    def step_brush(self, factor: float) -> None:
        self.brush.setValue(self.brush.value() * factor)

    def show_state(self, text: str) -> None:
        self.state.setText(text)
