"""The training ring at a glance: who trains when, this site's turn, live curves.

Widgets only: :class:`app.ring_controller.RingController` says what to show.
Loss curves: the running training loss per batch and the validation loss per
epoch of the turn in progress (:class:`LossPlot`; redrawn at most 5 times a second).
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QCheckBox, QGroupBox, QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget

from core.progress import Progress, format_eta

from .loss_plot import LossPlot
from .tables import read_only_table, set_row

if TYPE_CHECKING:  # the ring sync (and torch) is loaded when the ring is first checked
    from core.site.sync import SiteView

STATE_TEXT = {
    "my turn": "It is this site's turn",
    "waiting": "Waiting for another site",
    "training": "This site is training",
    "converged": "The ring has converged",
    "stopped": "The ring has stopped",
    "not a member": "This site is not in the ring",
}


class RingPanel(QGroupBox):
    trainRequested = Signal()
    cancelRequested = Signal()
    keepTakingChanged = Signal(bool)
    setupRequested = Signal()
    checkRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Training ring", parent)
        self.setObjectName("ringPanel")
        lay = QVBoxLayout(self)
        self.sync_label = QLabel("Ring: not set up")
        self.sync_label.setObjectName("syncStatus")
        self.sync_label.setWordWrap(True)
        self.sync_label.setTextFormat(Qt.TextFormat.PlainText)  # may quote the server's own text
        self.state_label = QLabel("")
        self.state_label.setObjectName("ringState")
        self.state_label.setWordWrap(True)
        self.table = read_only_table("ringTable", ["Site", "Turns", "Last trained", "Val. loss", ""])
        self.table.setMaximumHeight(130)
        buttons = QHBoxLayout()
        self.train_button = QPushButton("Train my turn")
        self.train_button.setObjectName("trainButton")
        self.train_button.setEnabled(False)
        self.cancel_button = QPushButton("Cancel training")
        self.cancel_button.setObjectName("cancelTraining")
        self.cancel_button.setEnabled(False)
        self.check_button = QPushButton("Check now")
        self.setup_button = QPushButton("Site and server…")
        for b in (self.train_button, self.cancel_button):
            buttons.addWidget(b)
        more = QHBoxLayout()
        for b in (self.check_button, self.setup_button):
            more.addWidget(b)
        self.keep_taking = QCheckBox("Keep taking my turns (leave running overnight)")
        self.keep_taking.setObjectName("keepTaking")
        self.progress = QProgressBar()
        self.progress.setObjectName("trainingProgress")
        self.progress.setVisible(False)
        self.progress_label = QLabel("")
        self.progress_label.setObjectName("trainingLabel")
        self.progress_label.setWordWrap(True)
        self.progress_label.setTextFormat(Qt.TextFormat.PlainText)
        self.plot = LossPlot()
        self.plot.setObjectName("lossPlot")
        for w in (self.sync_label, self.state_label, self.table):
            lay.addWidget(w)
        lay.addLayout(buttons)
        lay.addLayout(more)
        for w in (self.keep_taking, self.progress, self.progress_label, self.plot):
            lay.addWidget(w)
        self.train_button.clicked.connect(self.trainRequested)
        self.cancel_button.clicked.connect(self.cancelRequested)
        self.check_button.clicked.connect(self.checkRequested)
        self.setup_button.clicked.connect(self.setupRequested)
        self.keep_taking.toggled.connect(self.keepTakingChanged)
        self._train_x: list[float] = []
        self._train_y: list[float] = []
        self._val_x: list[float] = []
        self._val_y: list[float] = []
        self._dirty = False
        self._redraw = QTimer(self)
        self._redraw.setInterval(200)
        self._redraw.timeout.connect(self._draw)

    # ----------------------------------------------------------- ring state
    def show_status(self, text: str, ok: bool) -> None:
        self.sync_label.setText(text)
        self.sync_label.setStyleSheet("" if ok else "color: #c03020;")

    def show_view(self, view: SiteView, can_train: bool) -> None:
        state = view.state
        self.state_label.setText(f"<b>{STATE_TEXT.get(state, state)}.</b> {html.escape(view.describe())}")
        rows = view.rows()
        self.table.setRowCount(len(rows))
        for n, r in enumerate(rows):
            when = r.last_trained.replace("T", " ")[:16] if r.last_trained else "never"
            val = f"{r.last_val_loss:.4f}" if r.last_val_loss is not None else "-"
            tag = "training" if r.holding else ("next" if r.next else "")
            me = " (this site)" if r.site == view.site else ""
            set_row(self.table, n, (r.site + me, str(r.turns), when, val, tag))
        self.set_can_train(can_train)

    def set_can_train(self, can: bool) -> None:
        self.train_button.setEnabled(can)

    # ----------------------------------------------------------- a turn in progress
    def training_started(self) -> None:
        self._train_x, self._train_y, self._val_x, self._val_y = [], [], [], []
        self._draw()
        self.train_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.progress.setVisible(True)
        self.progress.setRange(0, 0)
        self.progress_label.setText("Starting the training process…")
        self._redraw.start()

    def training_event(self, ev: Progress) -> None:
        phase = getattr(ev, "phase", None)
        if phase is not None:  # core.training.trainer.TrainingProgress
            if ev.total:
                self.progress.setRange(0, 1000)
                self.progress.setValue(int(1000 * ev.done / ev.total))
            x = ev.epoch - 1 + (ev.batch / ev.n_batches if ev.n_batches else 0)
            if phase == "train" and ev.loss is not None:
                self._train_x.append(x)
                self._train_y.append(float(ev.loss))
                self._dirty = True
            elif phase == "epoch_end" and ev.val_loss is not None:
                self._val_x.append(float(ev.epoch))
                self._val_y.append(float(ev.val_loss))
                self._dirty = True
            loss = f", loss {ev.loss:.4f}" if ev.loss is not None else ""
            val = f", validation {ev.val_loss:.4f}" if ev.val_loss is not None else ""
            self.progress_label.setText(f"{ev.stage}: {ev.message}{loss}{val}. {format_eta(ev.eta_s)}")
        else:
            if ev.total:
                self.progress.setRange(0, 1000)
                self.progress.setValue(int(1000 * ev.done / ev.total))
            else:
                self.progress.setRange(0, 0)
            self.progress_label.setText(f"{ev.stage}: {ev.message}" if ev.message else ev.stage)

    def training_ended(self, text: str) -> None:
        self._redraw.stop()
        self._draw()
        self.cancel_button.setEnabled(False)
        self.progress.setVisible(False)
        self.progress_label.setText(text)

    def _draw(self) -> None:
        if not self._dirty and self._train_x:
            return
        self._dirty = False
        self.plot.set_data(list(zip(self._train_x, self._train_y)), list(zip(self._val_x, self._val_y)))

    @property
    def curve_points(self) -> tuple[int, int]:
        return len(self._train_x), len(self._val_x)

    def shutdown(self) -> None:
        """Before the window is destroyed: no redraw after it."""
        self._redraw.stop()

    def set_keep_taking(self, on: bool) -> None:
        self.keep_taking.blockSignals(True)
        self.keep_taking.setChecked(on)
        self.keep_taking.blockSignals(False)
