"""How the open case's prediction is shown and accepted.

Its label (which model made it), the implausibility warning over the view,
"Accept whole prediction" (asks first when the prediction is implausibly
large, :func:`core.site.gates.implausible`), and the model in use's
prediction when it is not the case's own (:class:`~app.panels.candidate_box.CandidateBox`:
both volumes and models, "Show it", "Use it for this case").
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from core.annotation.navigation import largest_slice
from core.cases.provenance import prediction_label
from core.site.gates import implausible

from .case_controller import CaseController
from .edit_controller import EditController
from .panels import DisplayPanel
from .prediction_controller import Candidate, PredictionController
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
        panel: DisplayPanel,
        warning: ViewWarning,
        parent=None,
    ) -> None:
        super().__init__(parent)
        self.controller, self.edit, self.predictions = controller, edit, predictions
        self.viewer, self.label, self.box, self.warning = viewer, panel.prediction_source, panel.candidate, warning
        predictions.labelChanged.connect(self.show_label)
        predictions.updated.connect(self._updated)
        predictions.candidateChanged.connect(self._candidate_changed)
        self.box.showToggled.connect(self._show_candidate)
        self.box.useRequested.connect(predictions.use_candidate)

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

    # ----------------------------------------------------------- the case's prediction changed
    def _updated(self, session, label: str) -> None:
        if session is not self.controller.session:
            return
        self.viewer.set_prediction(session.prediction)
        self.edit.attach(session)  # the same case: a click session in progress goes on
        k = largest_slice(session.prediction)
        if k is not None and not session.model.data.any() and self.viewer.untouched():
            self.viewer.go_to_slice(k)  # a case without a mask opens where its predicted bleed is largest
        self.predictionChanged.emit()
        self.message.emit(label)

    # ----------------------------------------------------------- the model in use's, beside it
    def _candidate_changed(self, c: Candidate | None) -> None:
        s = self.controller.session
        if c is None or s is None:
            self.box.clear()
            if s is not None:
                self.viewer.set_prediction(s.prediction)
            return
        case_label = prediction_label(s.paths.prediction) if s.prediction is not None else "none"
        self.box.offer(c.label, c.volume_ml, case_label, s.prediction_volume_ml())
        self.message.emit(f"A new prediction by {c.label} ({c.volume_ml:.2f} mL) is ready beside the case's.")

    def _show_candidate(self, on: bool) -> None:
        s, c = self.controller.session, self.predictions.candidate
        if s is None:
            return
        self.viewer.set_prediction(c.mask if on and c is not None else s.prediction)
        if on and c is not None:
            self.label.setText(f"Showing the new prediction by {c.label} (not the case's)")
        else:
            self.label.setText(self.predictions.label_for(s))
