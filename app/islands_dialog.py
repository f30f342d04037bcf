"""Edit > Islands…: the mask's separate parts and their clean-up (3D Slicer's Islands effect).

A table of the 3-D connected parts of the manual mask, largest first, with
their volume and slices (click a row: the views go to it); "Keep largest",
"Remove under N mL", "Keep selected" and "Remove selected" each remove parts
as one undo step. The parts are found by :func:`core.annotation.islands.find_islands`
and refreshed as the mask changes while the dialog is open.
"""

from __future__ import annotations

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from core.annotation import EditSession
from core.annotation.islands import Islands, find_islands, keep_largest, keep_parts, remove_parts, smaller_than
from core.annotation.tools import VolumeRegion

from .panels.tables import read_only_table, set_row
from .wheel_guard import guard_wheel

COLUMNS = ["Part", "Volume", "Slices", "Voxels"]


class IslandsDialog(QDialog):
    message = Signal(str)
    goTo = Signal(object)  # (k, row, col): show this voxel in every view

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("islandsDialog")
        self.setWindowTitle("Islands: separate parts of the mask")
        self.session: EditSession | None = None
        self.islands: Islands | None = None
        self.summary = QLabel("")
        self.summary.setObjectName("islandsSummary")
        self.summary.setWordWrap(True)
        self.table = read_only_table("islandsTable", COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setMinimumHeight(180)
        self.keep_largest_button = QPushButton("Keep largest")
        self.keep_largest_button.setObjectName("keepLargest")
        self.keep_selected_button = QPushButton("Keep selected")
        self.keep_selected_button.setObjectName("keepSelected")
        self.remove_selected_button = QPushButton("Remove selected")
        self.remove_selected_button.setObjectName("removeSelected")
        self.min_ml = QDoubleSpinBox()
        self.min_ml.setObjectName("minIslandMl")
        self.min_ml.setRange(0.01, 100.0)
        self.min_ml.setDecimals(2)
        self.min_ml.setSingleStep(0.1)
        self.min_ml.setValue(0.1)
        self.min_ml.setSuffix(" mL")
        guard_wheel(self.min_ml)
        self.remove_small_button = QPushButton("Remove parts under")
        self.remove_small_button.setObjectName("removeSmall")
        row1 = QHBoxLayout()
        for b in (self.keep_largest_button, self.keep_selected_button, self.remove_selected_button):
            row1.addWidget(b)
        row2 = QHBoxLayout()
        row2.addWidget(self.remove_small_button)
        row2.addWidget(self.min_ml)
        row2.addStretch(1)
        lay = QVBoxLayout(self)
        lay.addWidget(self.summary)
        lay.addWidget(self.table, 1)
        lay.addLayout(row1)
        lay.addLayout(row2)
        self._timer = QTimer(self)  # the mask changes stroke by stroke: count its parts once it rests
        self._timer.setSingleShot(True)
        self._timer.setInterval(300)
        self._timer.timeout.connect(self.refresh)
        self.keep_largest_button.clicked.connect(self.keep_largest)
        self.keep_selected_button.clicked.connect(lambda: self.keep_selected(self.selected()))
        self.remove_selected_button.clicked.connect(lambda: self.remove_selected(self.selected()))
        self.remove_small_button.clicked.connect(lambda: self.remove_under(self.min_ml.value()))
        self.table.itemSelectionChanged.connect(self._row_chosen)
        self.resize(460, 380)

    # ----------------------------------------------------------- the case
    def attach(self, session: EditSession | None) -> None:
        self.session = session
        self.refresh()

    def mask_changed(self) -> None:
        if self.isVisible():
            self._timer.start()

    def refresh(self) -> None:
        s = self.session
        self.islands = None if s is None else find_islands(s.model.data, s.ct.voxel_volume_ml)
        parts = self.islands.parts if self.islands is not None else ()
        self.table.setRowCount(len(parts))
        for n, p in enumerate(parts):
            set_row(self.table, n, (str(p.number), f"{p.volume_ml:.3f} mL", p.slices_text(), f"{p.n_voxels:,}"))
        if s is None:
            self.summary.setText("No case is open.")
        elif not parts:
            self.summary.setText("The mask is empty: no parts.")
        else:
            total = sum(p.volume_ml for p in parts)
            self.summary.setText(
                f"{len(parts)} separate part(s), {total:.2f} mL in all (3-D connected, as the report counts "
                "them). Click a row to see it; every button is one undo step."
            )
        for b in (self.keep_largest_button, self.remove_small_button, self.keep_selected_button):
            b.setEnabled(len(parts) > 1 or (b is self.remove_small_button and bool(parts)))
        self.remove_selected_button.setEnabled(bool(parts))

    def selected(self) -> set[int]:
        if self.islands is None:
            return set()
        rows = {i.row() for i in self.table.selectionModel().selectedRows()}
        return {self.islands.parts[r].number for r in rows if r < len(self.islands.parts)}

    def _row_chosen(self) -> None:
        chosen = sorted(self.selected())
        if chosen and self.islands is not None:
            self.goTo.emit(self.islands.parts[chosen[0] - 1].centre)

    # ----------------------------------------------------------- clean-up
    def keep_largest(self) -> None:
        if self.islands is not None:
            self._remove(keep_largest(self.islands), "keep the largest part")

    def remove_under(self, min_ml: float) -> None:
        if self.islands is not None:
            small = smaller_than(self.islands, min_ml)
            self._remove(remove_parts(self.islands, small), f"remove parts under {min_ml:g} mL")

    def keep_selected(self, numbers: set[int]) -> None:
        if self.islands is not None and numbers:
            self._remove(keep_parts(self.islands, numbers), "keep the selected parts")

    def remove_selected(self, numbers: set[int]) -> None:
        if self.islands is not None and numbers:
            self._remove(remove_parts(self.islands, numbers), "remove the selected parts")

    def _remove(self, region: VolumeRegion | None, label: str) -> None:
        s = self.session
        if s is None or region is None:
            self.message.emit(f"Islands: nothing to remove ({label}).")
            return
        if s.model.in_stroke:
            s.model.end_stroke()
        before = len(self.islands.parts) if self.islands is not None else 0
        s.model.begin_stroke(f"islands: {label}")
        n = s.model.set_box(region.box, region.mask, 0)
        s.model.end_stroke()
        self.refresh()
        after = len(self.islands.parts) if self.islands is not None else 0
        self.message.emit(
            f"Islands ({label}): {before - after} part(s) removed, {n:,} voxels "
            f"({n * s.ct.voxel_volume_ml:.2f} mL); one undo step (Ctrl+Z)."
        )
