"""Closing the window: one state, not several flags.

A close request first waits for a running training turn (after asking: the
child process must release the ring's lease, so the window closes when the
turn has ended), then settles the open case (asking to save unsaved edits),
then stops the ring's jobs, lets writes in flight finish and saves the
settings.
"""

from __future__ import annotations

import enum
from typing import Callable

from PySide6.QtCore import QThreadPool, QTimer
from PySide6.QtWidgets import QWidget

from .case_controller import CaseController
from .preferences import Preferences
from .ring_dock import RingDock


class Closing(enum.Enum):
    NO = "open"
    AFTER_TRAINING = "waiting for the training turn to release its lease"
    NOW = "the open case is settled: the next close is accepted"


class CloseFlow:
    def __init__(
        self,
        window: QWidget,
        controller: CaseController,
        ring_dock: RingDock,
        prefs: Preferences,
        status: Callable[[str], None],
    ) -> None:
        self.window, self.controller, self.ring_dock, self.prefs, self.status = (
            window,
            controller,
            ring_dock,
            prefs,
            status,
        )
        self.state = Closing.NO

    def close_event(self, event) -> None:
        if self.state is Closing.NOW:
            self.ring_dock.shutdown()
            QThreadPool.globalInstance().waitForDone(10000)  # let writes in flight finish
            self.prefs.save()  # the last folder is a convenience: a failure never blocks closing
            event.accept()
            return
        event.ignore()
        if self.state is Closing.AFTER_TRAINING:
            return  # already stopping; closes when the turn has ended
        if self.ring_dock.ring.training:
            answer = self.controller.ask(
                "Training in progress",
                "This site's training turn is still running. Cancel it "
                "(nothing is published; the ring stays as it was) and quit?",
                ["Cancel training and quit", "Keep training"],
            )
            if answer != "Keep training":
                # wait for the child to release the lease before quitting: closes on trainingEnded
                self.state = Closing.AFTER_TRAINING
                self.status("Stopping the training turn; the window closes when the lease is released…")
                self.ring_dock.ring.cancel_training()
            return

        def then(ok: bool) -> None:
            if ok:
                self.state = Closing.NOW
                # not close() here: inside closeEvent Qt ignores a nested close
                # (close_case answers at once when nothing is unsaved)
                QTimer.singleShot(0, self.window.close)

        self.controller.close_case(then)

    def training_ended(self) -> None:
        if self.state is Closing.AFTER_TRAINING:
            self.state = Closing.NO  # the turn is over: close as usual (asking about unsaved edits)
            QTimer.singleShot(0, self.window.close)
