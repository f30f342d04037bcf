"""Preferences: window presets, blood HU range, brush size, user name, autosave."""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from .settings import Settings, WindowPreset
from .wheel_guard import guard_wheel_below


def _spin(lo: float, hi: float, value: float, suffix: str = "", decimals: int = 0) -> QDoubleSpinBox:
    s = QDoubleSpinBox()
    s.setRange(lo, hi)
    s.setDecimals(decimals)
    s.setValue(value)
    s.setSuffix(suffix)
    return s


class SettingsDialog(QDialog):
    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Preferences")
        self._base = settings
        self.user = QLineEdit(settings.user)
        self.rows: list[tuple[WindowPreset, QDoubleSpinBox, QDoubleSpinBox]] = []
        presets = QGroupBox("Window presets (key: width / level in HU)")
        grid = QGridLayout(presets)
        for n, p in enumerate(settings.presets):
            w, lv = _spin(1, 5000, p.width, " W"), _spin(-1024, 3000, p.level, " L")
            grid.addWidget(QLabel(f"{p.key}  {p.name}"), n, 0)
            grid.addWidget(w, n, 1)
            grid.addWidget(lv, n, 2)
            self.rows.append((p, w, lv))
        self.low = _spin(-1024, 3000, settings.blood_low_hu, " HU")
        self.high = _spin(-1024, 3000, settings.blood_high_hu, " HU")
        self.brush = _spin(0.5, 100, settings.brush_mm, " mm", 1)
        self.autosave = _spin(0.5, 60, settings.autosave_delay_s, " s", 1)
        form = QFormLayout()
        form.addRow("Your name (recorded with case status)", self.user)
        form.addRow("Blood range from", self.low)
        form.addRow("to", self.high)
        form.addRow("Brush diameter", self.brush)
        form.addRow("Autosave after", self.autosave)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(presets)
        lay.addLayout(form)
        lay.addWidget(buttons)
        guard_wheel_below(self)  # the wheel scrolls; it never changes a value on the way

    def result_settings(self) -> Settings:
        """The edited settings (validated: raises ConfigError with the reason)."""
        presets = tuple(replace(p, width=w.value(), level=lv.value()) for p, w, lv in self.rows)
        return replace(
            self._base,
            user=self.user.text().strip() or self._base.user,
            presets=presets,
            blood_low_hu=self.low.value(),
            blood_high_hu=self.high.value(),
            brush_mm=self.brush.value(),
            autosave_delay_s=self.autosave.value(),
        ).validated()
