"""The open case's prediction, recomputed in the background with the model in use.

When the user chooses a model version (or opens a case whose saved
prediction came from another version), the case's CT is segmented on a
worker with that version; the result replaces the prediction overlay, is
written as ``pred_NNN.nii.gz`` with its provenance, and is labelled with the
model version everywhere it is shown.

Before any version is chosen (a new site, before its first ring turn), the
default model shipped with the program predicts the cases that have no
prediction yet, labelled as the default model; a prediction already on disk is
left as it is until the user chooses a version.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from core.annotation import EditSession
from core.annotation.session import PredictionUpdate
from core.model.default import default_model_path, has_default_model
from core.model.weights import read_meta
from core.cases.case_files import provenance_path
from core.cases.provenance import prediction_label
from core.site.versions import ModelVersion

from .errors import is_cancel, user_message
from .workers import Job, start_job


def _made_by(session: EditSession) -> str | None:
    """The model version recorded beside the case's saved prediction."""
    try:
        return json.loads(provenance_path(session.paths.prediction).read_text()).get("model_version")
    except (OSError, ValueError, AttributeError):
        return None


@dataclass(frozen=True)
class ModelChoice:
    """The model that predicts the open case: a chosen version, or the shipped default."""

    label: str  # e.g. "v3 from site b" or "default model"
    path: Path
    is_default: bool = False


def default_choice() -> ModelChoice | None:
    return ModelChoice("default model", default_model_path(), True) if has_default_model() else None


class PredictionController(QObject):
    started = Signal(object)  # Job
    updated = Signal(object, str)  # EditSession, label of the model that made it
    labelChanged = Signal(str)
    failed = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.job: Job | None = None
        self.session: EditSession | None = None
        self.wanted: ModelChoice | None = default_choice()  # the model in use

    def label_for(self, session: EditSession | None) -> str:
        if session is None:
            return ""
        if session.prediction is None:
            return "Prediction: none"
        return f"Prediction: {prediction_label(session.paths.prediction)}"

    def case_opened(self, session: EditSession) -> None:
        self.session = session
        self.labelChanged.emit(self.label_for(session))
        self._refresh_if_stale()

    def case_closed(self) -> None:
        self.session = None
        if self.job is not None and self.job.running:
            self.job.cancel()
        self.labelChanged.emit("")

    def use_model(self, version: ModelVersion | None, path: Path | None) -> None:
        """``version`` None: no version chosen at this site, the default model predicts."""
        if version is not None and path is not None:
            self.wanted = ModelChoice(f"{version.label()}", path)
        else:
            self.wanted = default_choice()
        self._refresh_if_stale()

    def _refresh_if_stale(self) -> None:
        s = self.session
        if s is None or self.wanted is None:
            return
        if self.wanted.is_default and s.prediction is not None:
            return  # the default model fills in missing predictions only
        path = self.wanted.path
        try:
            want = read_meta(path).version
        except Exception as exc:  # noqa: BLE001 - shown, never raised at the user
            self.failed.emit(user_message(exc, "Reading the model"))
            return
        if s.prediction is not None and _made_by(s) == want:
            return
        self.recompute()

    def recompute(self) -> None:
        s, wanted = self.session, self.wanted
        if s is None or wanted is None:
            return
        if self.job is not None and self.job.running:
            self.job.cancel()
        path = wanted.path
        job = start_job(
            f"Predicting with the {wanted.label}" if wanted.is_default else f"Predicting with model {wanted.label}",
            lambda token: s.predict(path, token),
            parent=self,
        )
        job.finished.connect(lambda upd, j=job, ss=s: self._done(j, ss, upd))
        job.errored.connect(lambda exc, j=job: self._failed(j, exc))
        self.job = job
        self.labelChanged.emit(
            f"Prediction: computing with the {wanted.label}…"
            if wanted.is_default
            else f"Prediction: recomputing with model {wanted.label}…"
        )
        self.started.emit(job)

    def _done(self, job: Job, s: EditSession, upd: PredictionUpdate) -> None:
        if job is not self.job or s is not self.session:
            return  # superseded by a later request or another case
        s.set_prediction(upd)
        label = self.label_for(s)
        self.updated.emit(s, label)
        self.labelChanged.emit(label)

    def _failed(self, job: Job, exc: BaseException) -> None:
        if job is not self.job or is_cancel(exc):
            return
        self.labelChanged.emit(self.label_for(self.session))
        self.failed.emit(user_message(exc, "Predicting the open case"))
