"""Display: window presets, overlay visibility/opacity/outline, difference view."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QGridLayout,
    QGroupBox,
    QLabel,
    QSizePolicy,
    QSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ..actions import Actions
from ..viewer import OverlayStyle, WindowLevel
from .candidate_box import CandidateBox

NAMES = {"manual": "Manual mask", "prediction": "Prediction"}


class DisplayPanel(QGroupBox):
    styleChanged = Signal(str, object)  # "manual"/"prediction", OverlayStyle

    def __init__(self, actions: Actions, styles: dict[str, OverlayStyle], parent: QWidget | None = None) -> None:
        super().__init__("Display", parent)
        self.setObjectName("displayPanel")
        self.actions = actions
        lay = QVBoxLayout(self)
        presets = QGridLayout()
        self.preset_buttons = []
        for n, action in enumerate(actions.presets):
            b = QToolButton()
            b.setDefaultAction(action)
            b.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
            presets.addWidget(b, n // 2, n % 2)
            self.preset_buttons.append(b)
        lay.addLayout(presets)
        self.window_label = QLabel("")
        self.window_label.setObjectName("windowLabel")
        self.window_label.setToolTip("Right-drag on the image: horizontal = width, vertical = level")
        lay.addWidget(self.window_label)

        grid = QGridLayout()
        self.opacity: dict[str, QSlider] = {}
        self.outline: dict[str, QCheckBox] = {}
        visible = {"manual": actions.show_manual, "prediction": actions.show_prediction}
        for row, (name, title) in enumerate(NAMES.items()):
            vis = QToolButton()
            vis.setDefaultAction(visible[name])
            visible[name].setChecked(styles[name].visible)
            op = QSlider(Qt.Orientation.Horizontal)
            op.setObjectName(f"opacity:{name}")
            op.setRange(5, 100)
            op.setValue(int(round(styles[name].opacity * 100)))
            op.setToolTip(f"{title} opacity")
            ol = QCheckBox("outline")
            ol.setObjectName(f"outline:{name}")
            ol.setChecked(styles[name].outline)
            grid.addWidget(vis, row, 0)
            grid.addWidget(op, row, 1)
            grid.addWidget(ol, row, 2)
            self.opacity[name], self.outline[name] = op, ol
            op.valueChanged.connect(lambda _v, n=name: self._emit(n))
            ol.toggled.connect(lambda _v, n=name: self._emit(n))
            visible[name].toggled.connect(lambda _v, n=name: self._emit(n))
        lay.addLayout(grid)
        diff = QToolButton()
        diff.setDefaultAction(actions.difference)
        lay.addWidget(diff)
        legend = QLabel(
            '<span style="color:#ff4020">■</span> manual  '
            '<span style="color:#28c8ff">■</span> prediction  '
            '<span style="color:#3ce63c">■</span> added  '
            '<span style="color:#eb3ceb">■</span> removed'
        )
        legend.setTextFormat(Qt.TextFormat.RichText)
        lay.addWidget(legend)
        self.prediction_source = QLabel("")  # which model made the prediction overlay
        self.prediction_source.setObjectName("predictionSource")
        self.prediction_source.setWordWrap(True)
        lay.addWidget(self.prediction_source)
        self.candidate = CandidateBox()  # the model in use's prediction, beside the case's
        lay.addWidget(self.candidate)

    def style(self, name: str) -> OverlayStyle:
        vis = self.actions.show_manual if name == "manual" else self.actions.show_prediction
        return OverlayStyle(vis.isChecked(), self.opacity[name].value() / 100.0, self.outline[name].isChecked())

    def _emit(self, name: str) -> None:
        self.styleChanged.emit(name, self.style(name))

    def show_window(self, wl: WindowLevel) -> None:
        self.window_label.setText(f"Window {wl}")
