"""The open case's prediction, and the model in use's prediction beside it.

A case's prediction (``pred_NNN.nii.gz``) is never overwritten. When the
model in use did not make it, that model's prediction is computed on a worker
into a file kept beside it (:meth:`core.cases.case_files.CaseFiles.kept_prediction`,
or read from there when it was computed before) and offered: the display
panel shows both volumes and models, the clinician can show the new one and
choose it for the case (the one it replaces is kept beside in turn).

A case without any prediction gets the model in use's directly. Before any
version is chosen (a new site, before its first ring turn) that is the default
model shipped with the program; it fills in missing predictions only, and
offers its earlier prediction when one was kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Signal

from core.annotation import EditSession
from core.annotation.session import PredictionUpdate
from core.cases.provenance import made_by, model_tag, prediction_label, use_kept_prediction, weights_tensors_sha256
from core.evaluation.metrics import volume_ml
from core.model.default import default_model_path, has_default_model, read_card
from core.site.versions import ModelVersion

from .errors import is_cancel, user_message
from .workers import Job, job_from_function, start_job


@dataclass(frozen=True)
class ModelChoice:
    """The model that predicts the open case: a chosen version, or the shipped default."""

    label: str  # with its article: "model v3 (site b, round 2)", "the default model ..., shipped ..."
    path: Path
    tag: str  # core.cases.provenance.model_tag of its weights tensors
    is_default: bool = False


@dataclass(frozen=True)
class Candidate:
    """The model in use's prediction of the open case, kept beside the case's own."""

    path: Path
    mask: np.ndarray  # stack layout, uint8
    label: str  # which model made it (core.cases.provenance.prediction_label)
    volume_ml: float


def _load(path: Path) -> None:
    """Import the inference code (torch) and read the weights once: the warm-up's work."""
    from core.evaluation.inference import Segmenter
    from core.site import sync, training  # noqa: F401 - the ring's modules, ready for the first check

    Segmenter.from_file(path)


def default_choice() -> ModelChoice | None:
    if not has_default_model():
        return None
    try:
        card = read_card()
    except Exception:  # noqa: BLE001 - a damaged card: the default model is not offered
        return None
    sha = str(card.get("tensors_sha256", "")) or weights_tensors_sha256(default_model_path())
    label = f"the default model {card.get('version', '')}, shipped with the program"
    return ModelChoice(label, default_model_path(), model_tag(sha), True)


def version_choice(version: ModelVersion, path: Path) -> ModelChoice:
    sha = version.tensors_sha256 or weights_tensors_sha256(path)
    label = version.label() if version.shipped else f"model {version.label()}"
    return ModelChoice(label, path, model_tag(sha), version.shipped)


class PredictionController(QObject):
    started = Signal(object)  # Job
    updated = Signal(object, str)  # EditSession, label of the model that made its prediction
    candidateChanged = Signal(object)  # Candidate | None: the model in use's prediction, beside
    labelChanged = Signal(str)
    failed = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.job: Job | None = None
        self.session: EditSession | None = None
        self.candidate: Candidate | None = None
        self.wanted: ModelChoice | None = default_choice()  # the model in use
        self._warmed = False
        self._refreshed: EditSession | None = None  # the case refresh() last ran for

    def warm_up(self) -> None:
        """Load torch, the inference code and the model in use on a worker (once, after start-up),
        so that the first prediction does not wait for them."""
        if self._warmed or self.wanted is None:
            return
        self._warmed = True
        path = self.wanted.path
        start_job("Loading the model", job_from_function("Loading the model", lambda: _load(path)), parent=self)

    def label_for(self, session: EditSession | None) -> str:
        if session is None:
            return ""
        if session.prediction is None:
            return "Prediction: none"
        return f"Prediction: {prediction_label(session.paths.prediction)}"

    def case_opened(self, session: EditSession) -> None:
        self.session = session
        self._set_candidate(None)
        self.labelChanged.emit(self.label_for(session))
        # the window calls refresh() once the case is painted: a prediction may load torch on a worker

    def refresh(self) -> None:
        """Once per opened case: compute (or offer) the model in use's prediction if it lacks it."""
        if self.session is None or self._refreshed is self.session:
            return
        self._refreshed = self.session
        self._refresh_if_stale()

    def case_closed(self) -> None:
        self.session = None
        if self.job is not None and self.job.running:
            self.job.cancel()
        self._set_candidate(None)
        self.labelChanged.emit("")

    def use_model(self, version: ModelVersion | None, path: Path | None) -> None:
        """``version`` None: no version chosen at this site, the default model predicts."""
        if version is not None and path is not None:
            self.wanted = version_choice(version, path)
        else:
            self.wanted = default_choice()
        self._set_candidate(None)
        self._refresh_if_stale()

    # ----------------------------------------------------------- what to compute
    def _refresh_if_stale(self) -> None:
        s, wanted = self.session, self.wanted
        if s is None or wanted is None:
            return
        if self.job is not None and self.job.running:
            self.job.cancel()
        if s.prediction is None:
            self._compute(s, wanted, s.paths.prediction)
            return
        if not s.paths.prediction.exists() or made_by(s.paths.prediction) == wanted.tag:
            return  # the case's prediction is the model in use's (or its file went away: left alone)
        kept = s.paths.kept_prediction(wanted.tag)
        if kept.exists():
            self._read_kept(s, kept)
        elif not wanted.is_default:  # the default model fills in missing predictions only
            self._compute(s, wanted, kept)

    def recompute(self) -> None:
        """Predict the open case with the model in use again (beside its prediction)."""
        s, wanted = self.session, self.wanted
        if s is None or wanted is None:
            return
        target = s.paths.prediction if s.prediction is None else s.paths.kept_prediction(wanted.tag)
        self._compute(s, wanted, target)

    def _compute(self, s: EditSession, wanted: ModelChoice, out: Path) -> None:
        if self.job is not None and self.job.running:
            self.job.cancel()
        path = wanted.path
        job = start_job(
            f"Predicting with {wanted.label}",
            lambda token: s.predict(path, token, out),
            parent=self,
        )
        job.finished.connect(lambda upd, j=job, ss=s: self._done(j, ss, upd))
        job.errored.connect(lambda exc, j=job: self._failed(j, exc))
        self.job = job
        if out == s.paths.prediction:
            self.labelChanged.emit(f"Prediction: computing with {wanted.label}…")
        else:
            self.labelChanged.emit(f"{self.label_for(s)} (computing the prediction of {wanted.label} beside it…)")
        self.started.emit(job)

    def _read_kept(self, s: EditSession, kept: Path) -> None:
        job = start_job(
            "Reading the kept prediction",
            job_from_function(
                "Reading the kept prediction", lambda: PredictionUpdate(s.read_prediction(kept), "", 0.0, kept)
            ),
            parent=self,
        )
        job.finished.connect(lambda upd, j=job, ss=s: self._done(j, ss, upd))
        job.errored.connect(lambda exc, j=job: self._failed(j, exc))
        self.job = job

    def _done(self, job: Job, s: EditSession, upd: PredictionUpdate) -> None:
        if job is not self.job or s is not self.session:
            return  # superseded by a later request or another case
        if upd.path is None or upd.path == s.paths.prediction:
            s.set_prediction(upd)
            label = self.label_for(s)
            self.updated.emit(s, label)
            self.labelChanged.emit(label)
            return
        ml = volume_ml(upd.stack_mask, s.ct.voxel_volume_ml)
        self._set_candidate(Candidate(upd.path, upd.stack_mask, prediction_label(upd.path), ml))
        self.labelChanged.emit(self.label_for(s))

    def _failed(self, job: Job, exc: BaseException) -> None:
        if job is not self.job or is_cancel(exc):
            return
        self.labelChanged.emit(self.label_for(self.session))
        self.failed.emit(user_message(exc, "Predicting the open case"))

    # ----------------------------------------------------------- the prediction beside
    def _set_candidate(self, candidate: Candidate | None) -> None:
        if candidate is None and self.candidate is None:
            return
        self.candidate = candidate
        self.candidateChanged.emit(candidate)

    def use_candidate(self) -> None:
        """Make the model in use's prediction the case's (the one it replaces is kept beside)."""
        s, c = self.session, self.candidate
        if s is None or c is None:
            return
        try:
            use_kept_prediction(s.paths, c.path)
        except OSError as exc:
            self.failed.emit(f"The new prediction could not be made the case's: {exc.strerror or exc}.")
            return
        s.set_prediction(PredictionUpdate(c.mask, "", 0.0, s.paths.prediction))
        self._set_candidate(None)
        label = self.label_for(s)
        self.updated.emit(s, label)
        self.labelChanged.emit(label)
