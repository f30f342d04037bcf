"""How the open case's prediction is shown and accepted: its label, the implausibility
warning over the view, and "Accept whole prediction", which asks first when the
prediction is implausibly large (:func:`core.site.gates.implausible`)."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from core.site.gates import implausible

from .case_controller import CaseController
from .edit_controller import EditController
from .prediction_controller import PredictionController
from .viewer import ViewerArea
from .viewer_warning import ViewWarning


class PredictionDisplay(QObject):
    message = Signal(str)
    predictionChanged = Signal()  # the case's prediction changed: flags, volumes, worklist row

    def __init__(
        self,
        controller: CaseController,
        edit: EditController,
        predictions: PredictionController,
        viewer: ViewerArea,
        panel,
        warning: ViewWarning,
        parent=None,
    ) -> None:
        super().__init__(parent)
        self.controller, self.edit, self.predictions = controller, edit, predictions
        self.viewer, self.label, self.warning = viewer, panel.prediction_source, warning
        predictions.labelChanged.connect(self.show_label)
        predictions.updated.connect(self._updated)

    def show_label(self, text: str) -> None:
        self.label.setText(text)
        self.show_plausibility()

    def show_plausibility(self) -> None:
        """An implausibly large prediction is flagged over the view and beside its label."""
        s = self.controller.session
        warn = implausible(s.prediction_volume_ml()) if s is not None else ""
        self.warning.show_warning(f"Prediction {warn}" if warn else "")
        self.label.setStyleSheet("color: #c03020;" if warn else "")
        self.label.setToolTip(warn)

    def accept_whole(self) -> None:
        s = self.controller.session
        warn = implausible(s.prediction_volume_ml()) if s is not None else ""
        if warn:
            yes = "Accept it anyway"
            question = f"The model's prediction is {warn}"
            if self.controller.ask("Accept the whole prediction?", question, [yes, "Cancel"]) != yes:
                self.message.emit("The prediction was not accepted.")
                return
        self.edit.accept_whole_prediction()

    def _updated(self, session, label: str) -> None:
        if session is not self.controller.session:
            return
        self.viewer.set_prediction(session.prediction)
        self.edit.detach()
        self.edit.attach(session)
        self.predictionChanged.emit()
        self.message.emit(label)
