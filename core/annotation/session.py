"""One case open for editing: CT, manual mask with undo, prediction, files.

Opening (:func:`open_case`) and saving run as progress generators so the GUI
can run them on a worker thread. The CT is turned to the canonical
orientation and laid out as an :class:`~core.annotation.stack.AxialStack`
once; the mask model edits that layout, and saving maps it back to the CT's
own grid exactly (flips and transposes only) before writing it beside the
CT with :func:`core.io.save_mask`, atomically, never over the CT.

Work that must see a stable mask while the user keeps painting takes a
:class:`MaskSnapshot` on the GUI thread first; the slow part (mapping,
compressing, writing) then runs on the worker with that copy.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Generator

import numpy as np

from ..cases.case_files import CaseFiles, case_files
from ..cases.mask_origin import (
    MaskOrigin,
    MaskProvenance,
    accepted_parts,
    corrections,
    mask_provenance,
    origin_of_model,
    origin_of_prediction,
    read_origin,
    write_origin,
)
from ..cases.measurements import case_measurement_lines
from ..cases.provenance import prediction_label
from ..errors import HemaRelayError, InputError
from ..evaluation.metrics import volume_ml
from ..imaging.orientation import Reorientation, to_canonical
from ..imaging.volume import Volume
from ..io import load_ct, load_mask, save_mask
from ..progress import NEVER_CANCELLED, CancelToken, Progress
from ..reports import ReportJob
from .case_lock import CaseLock, CaseLockedError
from .model import MAX_UNDO_DEFAULT, MaskModel
from .recovery import RecoveryFile, discard_recovery, pending_recovery, read_recovery, write_recovery
from .stack import AxialStack

STAGE_OPEN = "Opening case"
_PREDICTION_WRITE = threading.Lock()
STAGE_SAVE = "Saving mask"


@dataclass(frozen=True)
class MaskSnapshot:
    """A copy of the mask taken at one moment, with the state it represents."""

    data: np.ndarray  # stack layout [k, row, col], uint8
    state_id: int
    revision: int
    origin: MaskOrigin | None = None  # the model it started from, at that moment (stack layout)


@dataclass(frozen=True)
class PredictionUpdate:
    stack_mask: np.ndarray  # uint8, stack layout
    model_version: str
    seconds: float
    path: Path | None = None  # the file written: the case's prediction, or one kept beside it


@dataclass
class EditSession:
    paths: CaseFiles
    ct: Volume  # as read, on its own grid (what reports and saving use)
    reorientation: Reorientation
    stack: AxialStack
    hu: np.ndarray  # CT in stack layout [k, row, col], int16 or float32
    model: MaskModel  # manual mask in stack layout
    prediction: np.ndarray | None  # model's mask in stack layout, uint8; None when absent
    mask_on_disk: bool  # a saved manual mask existed when the case was opened (or was saved)
    recovery: RecoveryFile | None  # unsaved edits found when the case was opened
    notes: list[str] = field(default_factory=list)  # things worth telling the user
    lock: CaseLock | None = None  # None: read-only (another window edits the case)
    read_only_reason: str = ""  # why, for the user
    # The brain mask in stack layout, once :func:`brain_job` has run (a worker computes
    # it after the case opens): the blood brush, the threshold box and the fills stay
    # inside it, and the click tool starts from it. None until then.
    brain: np.ndarray | None = None
    # the model prediction the mask started from (core.cases.mask_origin), accepted voxels in stack layout
    origin: MaskOrigin | None = None
    editor: str = ""  # who edits (recorded beside the saved mask as who corrected it)

    @property
    def read_only(self) -> bool:
        return self.lock is None

    def _writable(self, what: str) -> None:
        if self.lock is None:
            raise InputError(f"{what}: {self.read_only_reason or 'the case is open read-only.'}")
        self.lock.check(what)

    def close(self) -> None:
        """Release the case's lock (call when the case is closed)."""
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    @property
    def case_id(self) -> str:
        return self.paths.case_id

    @property
    def n_slices(self) -> int:
        return self.stack.shape[0]

    # ----------------------------------------------------------- numbers
    def volume_ml(self) -> float:
        return volume_ml(self.model.data, self.ct.voxel_volume_ml)

    def prediction_volume_ml(self) -> float | None:
        if self.prediction is None:
            return None
        return volume_ml(self.prediction, self.ct.voxel_volume_ml)

    def first_slice_with_mask(self) -> int | None:
        """A slice worth showing first: the one with the most manual (else predicted) mask."""
        for arr in (self.model.data, self.prediction):
            if arr is not None:
                per_slice = np.count_nonzero(arr, axis=(1, 2))
                if per_slice.any():
                    return int(np.argmax(per_slice))
        return None

    # ----------------------------------------------------------- layouts
    def to_source(self, stack_mask: np.ndarray) -> np.ndarray:
        return self.reorientation.to_source(self.stack.from_stack(stack_mask))

    def from_source(self, source_mask: np.ndarray) -> np.ndarray:
        return self.stack.to_stack(self.reorientation.to_canonical(source_mask))

    # ----------------------------------------------------------- saving
    def snapshot(self) -> MaskSnapshot:
        return MaskSnapshot(self.model.snapshot(), self.model.state_id, self.model.revision, self.origin)

    def save(self, snap: MaskSnapshot, token: CancelToken = NEVER_CANCELLED) -> Generator[Progress, None, Path]:
        """Write ``snap`` as the case's mask (runs on a worker); see :meth:`saved`."""
        yield Progress(STAGE_SAVE, 0, 1, self.paths.mask.name)
        token.raise_if_cancelled()
        self._writable(f"Saving {self.paths.mask.name}")
        source = self.to_source(snap.data)
        path = save_mask(source, self.ct, self.paths.mask)
        if snap.origin is not None:  # the provenance follows the voxels
            accepted = self.to_source(snap.origin.accepted.astype(np.uint8)).astype(bool)
            origin = replace(snap.origin, accepted=accepted, edited_by=self.editor or snap.origin.edited_by)
            write_origin(self.paths.mask_origin, origin, corrections(source, accepted, self.ct.voxel_volume_ml))
        yield Progress(STAGE_SAVE, 1, 1, self.paths.mask.name)
        return path

    def saved(self, snap: MaskSnapshot) -> None:
        """Call on the GUI thread once :meth:`save` of ``snap`` succeeded."""
        self.model.mark_saved(snap.state_id)
        self.mask_on_disk = True
        self.recovery = None
        if not self.model.dirty:
            discard_recovery(self.paths.recovery)

    def write_recovery(self, snap: MaskSnapshot) -> Path:
        """Autosave ``snap`` to the recovery file (a worker calls this)."""
        self._writable(f"Autosaving case {self.case_id}")
        return write_recovery(self.paths.recovery, self.to_source(snap.data), self.ct)

    def restore_recovery(self) -> int:
        """Load the autosaved edits into the mask as one undoable step; returns
        the number of voxels that changed."""
        if self.recovery is None:
            return 0
        data = self.from_source(read_recovery(self.recovery.path, self.ct))
        n = self.model.replace(data, "restore autosaved edits")
        self.recovery = None
        return n

    def discard_recovery(self) -> None:
        if self.lock is not None:  # the recovery file of a read-only case is its editor's
            discard_recovery(self.paths.recovery)
        self.recovery = None

    # ----------------------------------------------------------- model prediction
    def predict(
        self, model_path: Path, token: CancelToken = NEVER_CANCELLED, out: Path | None = None
    ) -> Generator[Progress, None, "PredictionUpdate"]:
        """Segment this case's CT with the model in ``model_path`` (on a worker) and write
        the mask with its provenance (which model made it) to ``out``: by default the case's
        prediction ``pred_NNN.nii.gz`` (when it has none), else a prediction kept beside it
        (``CaseFiles.kept_prediction``)."""
        from ..cases.provenance import write_provenance
        from ..evaluation.inference import Segmenter

        out = out or self.paths.prediction
        seg = Segmenter.from_file(model_path)
        pred = yield from seg.predict(self.ct, token)
        with _PREDICTION_WRITE:  # mask and provenance of one job, never interleaved with another's
            token.raise_if_cancelled()  # a superseded job (cancelled) writes nothing
            save_mask(pred.mask, self.ct, out)
            write_provenance(out, seg.weights.meta)
        return PredictionUpdate(self.from_source(pred.mask), seg.weights.meta.version, pred.seconds, out)

    def read_prediction(self, path: Path) -> np.ndarray:
        """A predicted mask file of this case, in stack layout (uint8)."""
        return self.from_source(load_mask(path, self.ct).data).astype(np.uint8)

    def set_prediction(self, update: "PredictionUpdate") -> None:
        """Show a new prediction (GUI thread)."""
        self.prediction = update.stack_mask

    # ----------------------------------------------------------- where the mask came from
    def note_accepted(self) -> None:
        """After the reader accepted (a part of) the prediction: the predicted parts now wholly in
        the mask are recorded as accepted from the model that made the prediction."""
        if self.prediction is None:
            return
        taken = accepted_parts(self.prediction, self.model.data)
        if self.origin is None:
            self.origin = origin_of_prediction(self.paths.prediction, taken)
        else:
            fresh = origin_of_prediction(self.paths.prediction, taken)
            self.origin = replace(fresh, accepted=self.origin.accepted | taken)

    def note_model_drawn(self, drawn: np.ndarray, weights_path: Path) -> None:
        """After the reader accepted what the model drew at their clicks (Click bleed): those
        voxels are recorded as the model's, as accepted prediction parts are."""
        drawn = np.asarray(drawn, bool)
        if not drawn.any():
            return
        if self.origin is None:
            self.origin = origin_of_model(weights_path, drawn)
        else:
            self.origin = replace(self.origin, accepted=self.origin.accepted | drawn)

    def mask_provenance(self, reviewed_by: str) -> MaskProvenance:
        """What a report of the mask on screen says about it (see core.cases.mask_origin)."""
        return mask_provenance(self.origin, self.model.data, self.ct.voxel_volume_ml, reviewed_by, self.mask_label())

    def origin_on_source(self) -> MaskOrigin | None:
        """The origin with its accepted voxels on the CT's own grid (for reports and the SEG)."""
        if self.origin is None:
            return None
        return replace(self.origin, accepted=self.to_source(self.origin.accepted.astype(np.uint8)).astype(bool))

    # ----------------------------------------------------------- reports
    def mask_label(self) -> str:
        """Which mask a report of the current manual mask measures."""
        if self.model.dirty:
            return "manual (unsaved edits)"
        return f"manual ({self.paths.mask.name})" if self.mask_on_disk else "manual (empty, never saved)"

    def shown_mask_label(self) -> str:
        """The mask on screen as the panels name it: the model it started from, when it did
        (accepted prediction parts, Click bleed), with where it is saved."""
        if self.origin is None or not self.origin.accepted.any():
            return self.mask_label()
        where = self.mask_label().removeprefix("manual ")
        return f"from model {self.origin.model} {where}"

    def prediction_label(self) -> str:
        return prediction_label(self.paths.prediction)

    def report_job(self, use_prediction: bool = False) -> ReportJob:
        """A report job measuring the mask on screen (unsaved edits included) or the prediction."""
        if use_prediction:
            if self.prediction is None:
                raise InputError(
                    f"Case {self.case_id} has no model prediction ({self.paths.prediction.name}) to report."
                )
            data, label = self.prediction, self.prediction_label()
        else:
            data, label = self.model.data, self.mask_label()
        mask = self.ct.with_data(self.to_source(np.asarray(data, dtype=np.uint8)), source=None)
        lines = () if use_prediction else tuple(case_measurement_lines(self.paths.mask))
        return ReportJob(self.case_id, self.ct, mask, label, measurements=lines)


STAGE_BRAIN = "Finding the brain"


def brain_job(session: EditSession, token: CancelToken = NEVER_CANCELLED) -> Generator[Progress, None, np.ndarray]:
    """The brain mask of the open case in stack layout (about a second; on a worker).
    Raises InputError when the scan holds no brain the extraction recognises."""
    from ..imaging.brain import brain_mask_canonical

    yield Progress(STAGE_BRAIN, 0, 1, session.case_id)
    canon = Volume(session.stack.from_stack(session.hu), session.stack.canonical_affine)
    token.raise_if_cancelled()
    brain = session.stack.to_stack(brain_mask_canonical(canon))
    yield Progress(STAGE_BRAIN, 1, 1, session.case_id)
    return brain


def open_case(
    ct_path: str | Path, token: CancelToken = NEVER_CANCELLED, max_undo: int = MAX_UNDO_DEFAULT, user: str | None = None
) -> Generator[Progress, None, EditSession]:
    """Read a case's CT, its manual mask and prediction if present, and note
    unsaved autosaved edits. Raises InputError/GeometryError with a message
    naming the file when the CT or the saved mask cannot be used; a
    prediction that cannot be used is left out with a note."""
    paths = case_files(ct_path)
    if paths.folder != paths.ct.parent:  # a DICOM series: its files go to a work folder of its own
        try:
            paths.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"{paths.folder}: cannot create the folder for this series' files ({exc}).") from None
    total = 4
    yield Progress(STAGE_OPEN, 0, total, f"reading {paths.ct.name}")
    ct = load_ct(paths.ct)
    token.raise_if_cancelled()
    canon, reo = to_canonical(ct)
    stack = AxialStack(canon.shape, canon.affine)
    hu = stack.to_stack(canon.data)
    del canon
    yield Progress(STAGE_OPEN, 1, total, f"reading {paths.mask.name}")
    notes: list[str] = list(ct.notes)
    if paths.folder != paths.ct.parent:
        notes.append(f"This DICOM series' mask, prediction and status are kept in {paths.folder}.")
    if paths.mask.exists():
        manual = stack.to_stack(reo.to_canonical(load_mask(paths.mask, ct).data))
        on_disk = True
    else:
        manual = np.zeros(stack.shape, np.uint8)
        on_disk = False
    token.raise_if_cancelled()
    yield Progress(STAGE_OPEN, 2, total, f"reading {paths.prediction.name}")
    prediction = None
    if paths.prediction.exists():
        try:
            prediction = stack.to_stack(reo.to_canonical(load_mask(paths.prediction, ct).data))
        except HemaRelayError as exc:
            notes.append(f"The model prediction was left out: {exc}")
    token.raise_if_cancelled()
    yield Progress(STAGE_OPEN, 3, total, "preparing the display")
    model = MaskModel(manual, max_undo=max_undo)
    lock, reason = _take_lock(paths, user)
    if reason:
        notes.insert(0, reason)
    recovery = pending_recovery(paths.recovery, paths.mask) if lock is not None else None
    origin = read_origin(paths.mask_origin, ct.shape) if on_disk else None
    if origin is not None:
        origin = replace(origin, accepted=stack.to_stack(reo.to_canonical(origin.accepted.astype(np.uint8))) != 0)
    session = EditSession(
        paths,
        ct,
        reo,
        stack,
        hu,
        model,
        prediction,
        on_disk,
        recovery,
        notes,
        lock,
        reason,
        origin=origin,
        editor=user or "",
    )
    yield Progress(STAGE_OPEN, total, total, "done")
    return session


def _take_lock(paths: CaseFiles, user: str | None) -> tuple[CaseLock | None, str]:
    """The case's lock, or (None, why the case opens read-only)."""
    from ..cases.worklist import default_user

    try:
        return CaseLock.acquire(paths.lock, user or default_user(), f"Case {paths.case_id}"), ""
    except CaseLockedError as exc:
        return None, str(exc)
    except InputError as exc:  # a read-only folder: still viewable
        return None, f"Case {paths.case_id} opens read-only: {exc}"
