"""The worklist: the site folder's cases with status, volume and unsaved edits.

Status and unsaved edits come from :func:`core.cases.case_state.case_state` (through
``state_of``, which the window points at the open session), the same source the
status control, the report panel and the title read. The status control follows
the selected row, so "Set status" never applies a value left from another case.
A model volume above the plausibility bound (:mod:`core.site.gates`) is flagged.
"""

from __future__ import annotations

from typing import Callable

from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt, Signal
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableView,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from core.cases.case_state import CaseState, case_state
from core.cases.worklist import CaseStatus, CaseVolume, Worklist, WorklistCase
from core.site.gates import implausible

from ..actions import Actions

COLUMNS = ("Case", "Status", "Volume mL", "Mask", "Prediction", "Unsaved")
STATUS_COLOURS = {
    CaseStatus.NEW: None,
    CaseStatus.IN_PROGRESS: QColor(200, 140, 0),
    CaseStatus.REVIEWED: QColor(40, 110, 200),
    CaseStatus.APPROVED: QColor(20, 140, 60),
}


class WorklistModel(QAbstractTableModel):
    def __init__(self) -> None:
        super().__init__()
        self.worklist: Worklist | None = None
        self.volumes: dict[str, CaseVolume] = {}
        self.open_label: str | None = None
        self.open_dirty = False
        # the one source of a row's status and unsaved edits (the window passes the open session)
        self.state_of: Callable[[WorklistCase], CaseState] = lambda c: case_state(c.label, c, None)

    def set_worklist(self, wl: Worklist | None) -> None:
        self.beginResetModel()
        self.worklist, self.volumes = wl, {}
        self.endResetModel()

    @property
    def cases(self) -> list[WorklistCase]:
        return self.worklist.cases if self.worklist else []

    def row_of(self, label: str) -> int:
        for n, c in enumerate(self.cases):
            if c.label == label:
                return n
        return -1

    def _changed(self, label: str | None) -> None:
        row = self.row_of(label) if label else -1
        if row >= 0:
            self.dataChanged.emit(self.index(row, 0), self.index(row, len(COLUMNS) - 1))

    def set_volume(self, v: CaseVolume) -> None:
        self.volumes[v.label] = v
        self._changed(v.label)

    def case_changed(self, label: str) -> None:
        self._changed(label)

    def set_open(self, label: str | None, dirty: bool) -> None:
        old = self.open_label
        self.open_label, self.open_dirty = label, dirty
        self._changed(old)
        self._changed(label)

    # ------------------------------------------------------------ Qt model
    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self.cases)

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return COLUMNS[section]
        return None

    def data(self, index: QModelIndex, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        case = self.cases[index.row()]
        col = index.column()
        is_open = case.label == self.open_label
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(case, col, is_open)
        if role == Qt.ItemDataRole.ToolTipRole:
            if col == 1 and case.status is not None and case.status.user:
                return f"set by {case.status.user} on {case.status.changed_at}"
            if col == 1 and case.status is None and self.worklist is not None:
                return self.worklist.problems.get(case.paths.folder, "")
            if col == 2 and case.label in self.volumes:
                v = self.volumes[case.label]
                warn = implausible(v.volume_ml) if v.source == "model" else ""
                return v.error or warn or f"measured on the {v.source or 'no'} mask"
            return str(case.paths.ct)
        if role == Qt.ItemDataRole.FontRole and is_open:
            f = QFont()
            f.setBold(True)
            return f
        if role == Qt.ItemDataRole.ForegroundRole and col == 1 and case.status is not None:
            return STATUS_COLOURS[case.status.status]
        if role == Qt.ItemDataRole.ForegroundRole and col == 2 and self._implausible(case):
            return QColor(200, 30, 30)
        if role == Qt.ItemDataRole.TextAlignmentRole and col == 2:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def _implausible(self, case: WorklistCase) -> bool:
        v = self.volumes.get(case.label)
        return v is not None and v.source == "model" and bool(implausible(v.volume_ml))

    def _text(self, case: WorklistCase, col: int, is_open: bool) -> str:
        if col == 0:
            return case.label
        if col == 1:
            return self.state_of(case).status_text
        if col == 2:
            v = self.volumes.get(case.label)
            if v is None:
                return "…"
            if v.error:
                return "error"
            if v.volume_ml is None:
                return "–"
            text = f"{v.volume_ml:.1f}" + ("" if v.source == "manual" else " (model)")
            return text + (" ⚠ implausible" if self._implausible(case) else "")
        if col == 3:
            return "yes" if case.has_mask else "–"
        if col == 4:
            return "yes" if case.has_prediction else "–"
        return "yes" if self.state_of(case).unsaved else ""


class WorklistPanel(QWidget):
    openRequested = Signal(str)  # worklist label
    statusRequested = Signal(object, object)  # list of labels, CaseStatus

    def __init__(self, actions: Actions, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("worklistPanel")
        self.model = WorklistModel()
        self.table = QTableView()
        self.table.setObjectName("worklistTable")
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.doubleClicked.connect(lambda ix: self.openRequested.emit(self.model.cases[ix.row()].label))
        self.table.selectionModel().selectionChanged.connect(lambda *_: self.follow_selection())
        self.model.dataChanged.connect(lambda *_: self.follow_selection())
        self.folder_label = QLabel("No site folder open")
        self.folder_label.setObjectName("folderLabel")
        self.folder_label.setWordWrap(True)
        buttons = QHBoxLayout()
        for a in (actions.open_folder, actions.open_file, actions.open_dicom):
            b = QToolButton()
            b.setDefaultAction(a)
            buttons.addWidget(b)
        self.open_button = QPushButton("Open case")
        self.open_button.clicked.connect(self._open_selected)
        self.status_combo = QComboBox()
        self.status_combo.setObjectName("statusCombo")
        for s in CaseStatus:
            self.status_combo.addItem(s.value, s)
        self._followed: tuple[str | None, CaseStatus | None] = (None, None)
        self.status_button = QPushButton("Set status")
        self.status_button.setObjectName("setStatus")
        self.status_button.clicked.connect(self._set_status)
        row = QHBoxLayout()
        row.addWidget(self.open_button)
        row.addWidget(self.status_combo, 1)
        row.addWidget(self.status_button)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addLayout(buttons)
        lay.addWidget(self.folder_label)
        lay.addWidget(self.table, 1)
        lay.addLayout(row)

    def follow_selection(self) -> None:
        """The status control shows the status of the case "Set status" applies to: set when
        another case is selected or that case's status changes, and left alone otherwise (a
        volume measured in the background must not undo a choice being made)."""
        label = self.selected_label() or self.model.open_label
        case = next((c for c in self.model.cases if c.label == label), None)
        status = self.model.state_of(case).status if case is not None else None
        self.status_combo.setEnabled(case is not None)
        self.status_button.setEnabled(case is not None)
        if (label, status) == self._followed:
            return
        self._followed = (label, status)
        if status is not None:
            self.status_combo.setCurrentIndex(self.status_combo.findData(status))

    def set_worklist(self, wl: Worklist | None) -> None:
        self.model.set_worklist(wl)
        self.follow_selection()
        if wl is None:
            self.folder_label.setText("No site folder open")
            return
        text = f"{wl.folder}  ({len(wl.cases)} cases)"
        if wl.problems:
            text += "\n" + "\n".join(wl.problems.values())
        self.folder_label.setText(text)

    def selected_label(self) -> str | None:
        rows = self.table.selectionModel().selectedRows()
        return self.model.cases[rows[0].row()].label if rows else None

    def select(self, label: str) -> None:
        row = self.model.row_of(label)
        if row >= 0:
            self.table.selectRow(row)

    def _open_selected(self) -> None:
        label = self.selected_label()
        if label is not None:
            self.openRequested.emit(label)

    def selected_labels(self) -> list[str]:
        return [
            self.model.cases[r.row()].label
            for r in sorted(self.table.selectionModel().selectedRows(), key=lambda i: i.row())
        ]

    def _set_status(self) -> None:
        labels = self.selected_labels() or ([self.model.open_label] if self.model.open_label else [])
        if labels:
            self.statusRequested.emit(labels, self.status_combo.currentData())
