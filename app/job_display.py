"""The status bar's display of the job in progress: its name, a progress bar, Cancel."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QProgressBar, QPushButton, QStatusBar

from core.progress import Progress

from .workers import Job


class JobDisplay:
    """Shows the last job tracked (opening, saving, predicting, exporting) until it ends."""

    def __init__(self, bar: QStatusBar) -> None:
        self.job: Job | None = None
        self.label = QLabel("")
        self.label.setTextFormat(Qt.TextFormat.PlainText)  # may quote the ring server's text
        self.bar = QProgressBar()
        self.bar.setMaximumWidth(220)
        self.cancel = QPushButton("Cancel")
        self.cancel.clicked.connect(lambda: self.job.cancel() if self.job is not None else None)
        for w in self._widgets:
            w.setVisible(False)
            bar.addPermanentWidget(w)

    @property
    def _widgets(self):
        return (self.label, self.bar, self.cancel)

    def track(self, job: Job) -> None:
        self.label.setText(job.name)
        self.bar.setRange(0, 0)
        for w in self._widgets:
            w.setVisible(True)
        self.job = job

        def progress(ev: Progress) -> None:
            if ev.total:
                self.bar.setRange(0, 100)
                self.bar.setValue(int(100 * ev.done / ev.total))
            self.label.setText(f"{ev.stage}: {ev.message}" if ev.message else ev.stage)

        def hide(*_args) -> None:
            if self.job is job:
                for w in self._widgets:
                    w.setVisible(False)

        job.progress.connect(progress)
        job.finished.connect(hide)
        job.errored.connect(hide)
