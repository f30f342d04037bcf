"""Model versions this site has seen: origin, local scores, the one in use.

Each row is a version kept on this computer (:mod:`core.site.versions`):
the site and round that trained it, its sha256, when it arrived, its
validation loss at the training site, and its Dice and volume error on this
site's reviewed cases that it was not trained on ("not enough cases" when too
few: :mod:`core.site.gates`). A version the gates mark (too few cases, below a
floor, worse than the model in use) says why in the "Check" column; using it
asks first (the window does). "Use selected" switches the model (an older row
rolls back); a new version is offered, never applied, next to the current one's
scores. The hash shown is the weights tensors' sha256, the one a prediction's
label names (the ring's file sha256 is in the tooltip).
"""

from __future__ import annotations

import html

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QGroupBox, QHBoxLayout, QLabel, QPushButton, QTableWidget, QVBoxLayout, QWidget

from core.site.gates import describe, enough, judge
from core.site.versions import ModelVersion

from ..errors import plain_tooltip
from .tables import read_only_table, set_row

COLUMNS = [
    "Version",
    "Site",
    "Round",
    "Received",
    "Weights hash",
    "Val. loss",
    "Dice here",
    "Vol. error",
    "In use",
    "Check",
]


class ModelsPanel(QGroupBox):
    useRequested = Signal(int)  # version
    evaluateRequested = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Model versions", parent)
        self.setObjectName("modelsPanel")
        lay = QVBoxLayout(self)
        self.offer = QLabel("")
        self.offer.setObjectName("newVersionOffer")
        self.offer.setWordWrap(True)
        # Versions the signature checks refused, with the reason (core.ring.signing): never offered.
        self.refused = QLabel("")
        self.refused.setObjectName("refusedVersions")
        self.refused.setWordWrap(True)
        self.refused.setTextFormat(Qt.TextFormat.PlainText)
        self.refused.setStyleSheet("color: #c03020;")
        self.refused.setVisible(False)
        self.offer_button = QPushButton("Use the new version")
        self.offer_button.setObjectName("useNewVersion")
        self.offer_button.setVisible(False)
        self.table = read_only_table("versionsTable", COLUMNS)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        self.table.setMinimumHeight(120)
        buttons = QHBoxLayout()
        self.use_button = QPushButton("Use selected version")
        self.use_button.setObjectName("useVersion")
        self.eval_button = QPushButton("Evaluate selected")
        for b in (self.use_button, self.eval_button):
            buttons.addWidget(b)
        self.eval_label = QLabel("")
        self.eval_label.setObjectName("evaluationLabel")
        self.eval_label.setWordWrap(True)
        for w in (self.refused, self.offer, self.offer_button, self.table):
            lay.addWidget(w)
        lay.addLayout(buttons)
        lay.addWidget(self.eval_label)
        self._versions: list[ModelVersion] = []
        self._offered: int | None = None
        self._chosen: ModelVersion | None = None
        self.use_button.clicked.connect(lambda: self._emit_selected(self.useRequested))
        self.eval_button.clicked.connect(lambda: self._emit_selected(self.evaluateRequested))
        self.offer_button.clicked.connect(self._use_offered)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        self._selection_changed()

    def show_versions(self, versions: list[ModelVersion], chosen: ModelVersion | None) -> None:
        keep = self.selected()  # by version, before the rows change
        self._versions = list(versions)
        self._chosen = chosen
        self.table.setRowCount(len(versions))
        for n, v in enumerate(versions):
            s = v.score
            verdict = judge(v, chosen)
            if s is None:
                dice_text = vol_text = "-"
            elif not enough(s):
                dice_text, vol_text = f"not enough cases ({s.n_cases})", "-"
            else:
                dice_text = f"{s.dice_on_lesions:.3f} ({s.n_cases})"
                vol_text = f"{s.mean_abs_volume_error_ml:.1f} mL"
            cells = (
                v.short(),
                "shipped with the program" if v.shipped else v.site,
                "-" if v.shipped else str(v.round + 1),
                v.received_at.replace("T", " ")[:16],
                v.hash_text(),
                "-" if v.val_loss is None else f"{v.val_loss:.4f}",
                dice_text,
                vol_text,
                "✔ in use" if chosen is not None and chosen.version == v.version else "",
                "ok" if verdict.ok else "⚠ marked",
            )
            set_row(self.table, n, cells)
            self.table.item(n, COLUMNS.index("Weights hash")).setToolTip(
                plain_tooltip(
                    f"weights tensors sha256 {v.tensors_sha256 or 'not recorded'}\n"
                    f"file sha256 (as published by the ring) {v.sha256}"
                )
            )
            self.table.item(n, COLUMNS.index("Dice here")).setToolTip(plain_tooltip(describe(s)))
            self.table.item(n, COLUMNS.index("Check")).setToolTip(plain_tooltip(verdict.text() or "nothing against it"))
        if keep is not None:
            self.select(keep)
        self._update_offer(chosen)

    def show_refused(self, refused: tuple) -> None:
        """``RefusedVersion``s of the last sync: shown in plain text, never offered."""
        lines = [r.describe() for r in refused]
        self.refused.setText("\n".join(lines))
        self.refused.setVisible(bool(lines))

    def offer_new(self, v: ModelVersion) -> None:
        self._offered = v.version
        self._update_offer(self._chosen)

    def _update_offer(self, chosen: ModelVersion | None) -> None:
        v = next((x for x in self._versions if x.version == self._offered), None)
        if v is None or (chosen is not None and chosen.version >= v.version):  # the shipped model is 0
            self.offer.setText("")
            self.offer_button.setVisible(False)
            return
        mine = describe(v.score)
        now = "no model in use" if chosen is None else f"{chosen.label()} in use: {describe(chosen.score)}"
        verdict = judge(v, chosen)
        marked = "" if verdict.ok else f"<br><span style='color:#c03020'>⚠ {html.escape(verdict.text())}</span>"
        self.offer.setText(
            f"<b>New weights {html.escape(v.label())}</b>: {html.escape(mine)}. Now: {html.escape(now)}.{marked}"
        )
        self.offer_button.setText(f"Use {v.short()}")
        self.offer_button.setVisible(True)

    def _use_offered(self) -> None:
        if self._offered is not None:
            self.useRequested.emit(self._offered)

    def selected(self) -> int | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows or rows[0].row() >= len(self._versions):
            return None
        return self._versions[rows[0].row()].version

    def select(self, version: int) -> None:
        for n, v in enumerate(self._versions):
            if v.version == version:
                self.table.selectRow(n)
                return

    def _selection_changed(self) -> None:
        on = self.selected() is not None
        self.use_button.setEnabled(on)
        self.eval_button.setEnabled(on)

    def _emit_selected(self, signal) -> None:
        v = self.selected()
        if v is not None:
            signal.emit(v)

    def show_evaluation(self, text: str) -> None:
        self.eval_label.setText(text)
