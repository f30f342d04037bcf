"""A site's worklist: the cases in a folder and each case's review status.

A case is a ``ct_NNN.nii.gz`` with, beside it, an optional manual mask
``mask_NNN.nii.gz``, an optional model prediction ``pred_NNN.nii.gz`` and,
while edits are unsaved, a hidden recovery file (:mod:`core.cases.case_files`).
Each case's review status (new, in progress, reviewed, approved for training)
is kept in the folder's status file (:mod:`core.cases.case_status`); the rules for
changing it are :meth:`Worklist.set_status`'s.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Generator, Iterable

import numpy as np

from ..annotation.case_lock import held_by_other
from ..annotation.recovery import RecoveryFile, pending_recovery
from ..errors import HemaRelayError, InputError
from ..io.nifti import read_nifti
from ..progress import NEVER_CANCELLED, CancelToken, Progress
from ..reports import ReportJob
from .case_files import Case, CaseFiles, case_files
from .case_status import (  # noqa: F401 - the status types, re-exported where callers always found them
    NEW_RECORD,
    STATUS_FILE,
    STATUS_LOCK,
    CaseStatus,
    StatusConflictError,
    StatusRecord,
    StatusStore,
    UnopenedCasesError,
    default_user,
    mask_sha256,
)
from .datasets import list_cases
from .mask_origin import read_origin
from .provenance import prediction_label, prediction_model

STAGE_VOLUMES = "Measuring volumes"


@dataclass(frozen=True)
class WorklistCase:
    label: str  # "051", or "test/051" in a site folder with train/test/normal
    paths: CaseFiles
    status: StatusRecord | None  # None when the folder's status file is unreadable
    has_mask: bool
    has_prediction: bool
    unsaved: RecoveryFile | None  # autosaved edits newer than the saved mask
    opened: bool = False  # opened in the application at least once (its scan could be read)
    unreadable: str = ""  # why its scan could not be read, when opening it failed
    mask_changed: bool = False  # approved, but the mask file is not the one approved

    @property
    def approved_for_training(self) -> bool:
        """Approved, with the very mask that was approved saved and no unsaved edits."""
        return (
            self.status is not None
            and self.status.status is CaseStatus.APPROVED
            and self.has_mask
            and self.unsaved is None
            and not self.mask_changed
        )

    @property
    def case_id(self) -> str:
        return self.paths.case_id

    @property
    def case(self) -> Case:
        """The CT and its saved mask, named by the worklist label."""
        return Case(self.label, self.paths.ct, self.paths.mask if self.has_mask else None)


def _case(
    label: str, paths: CaseFiles, statuses: dict[str, StatusRecord] | None, seen=(frozenset(), {})
) -> WorklistCase:
    status = None if statuses is None else statuses.get(paths.case_id, NEW_RECORD)
    opened, unreadable = seen
    has_mask = paths.mask.exists()
    changed = (
        status is not None
        and status.status is CaseStatus.APPROVED
        and (not status.mask_sha256 or status.mask_sha256 != mask_sha256(paths.mask if has_mask else None))
    )
    return WorklistCase(
        label,
        paths,
        status,
        has_mask,
        paths.prediction.exists(),
        pending_recovery(paths.recovery, paths.mask),
        paths.case_id in opened,
        unreadable.get(paths.case_id, ""),
        changed,
    )


def _seen(store: StatusStore) -> tuple[set[str], dict[str, str]]:
    try:
        return store.seen()
    except InputError:
        return set(), {}


@dataclass
class Worklist:
    folder: Path
    cases: list[WorklistCase]
    problems: dict[Path, str] = field(default_factory=dict)  # case folder -> status file error

    def judged(self, *statuses: CaseStatus) -> list[Case]:
        """The cases a clinician has marked with one of ``statuses`` whose saved mask
        is the mask that was judged (saved, no unsaved edits pending): the one query
        behind :meth:`approved` and :meth:`reviewed` (as MONAI Label's datastore
        answers "which images are labelled" in one place)."""
        return [
            c.case
            for c in self.cases
            if c.status is not None
            and c.status.status in statuses
            and c.has_mask
            and c.unsaved is None
            and not c.mask_changed
        ]

    def approved(self) -> list[Case]:
        """The cases approved for training: what this site's training turn trains on."""
        return self.judged(CaseStatus.APPROVED)

    def reviewed(self) -> list[Case]:
        """The cases reviewed or approved for training: what a new model version is judged on."""
        return self.judged(CaseStatus.REVIEWED, CaseStatus.APPROVED)

    def find(self, label: str) -> WorklistCase:
        for c in self.cases:
            if c.label == label:
                return c
        raise InputError(f"case {label} is not in the worklist of {self.folder}.")

    def _replace(self, case: WorklistCase) -> WorklistCase:
        self.cases = [case if c.label == case.label else c for c in self.cases]
        return case

    def refresh(self, label: str) -> WorklistCase:
        """Re-read one case's files and status from disk."""
        case = self.find(label)
        folder = case.paths.folder
        statuses = None
        if folder not in self.problems:
            try:
                statuses = StatusStore(folder).read()
            except InputError as exc:
                self.problems[folder] = str(exc)
        return self._replace(_case(case.label, case_files(case.paths.ct), statuses, _seen(StatusStore(folder))))

    def mark_opened(self, label: str, user: str) -> None:
        case = self.find(label)
        StatusStore(case.paths.folder).mark_opened(case.case_id, user)
        self.refresh(label)

    def mark_unreadable(self, label: str, why: str) -> None:
        case = self.find(label)
        StatusStore(case.paths.folder).mark_unreadable(case.case_id, why)
        self.refresh(label)

    def set_status(
        self, label: str, status: CaseStatus, user: str | None = None, unopened_ok: bool = False
    ) -> WorklistCase:
        """Record a new status. Approval for training needs a saved mask and no
        unsaved autosaved edits. Refused when the case is open for editing in
        another window, or its status changed since this worklist read it. Marking a
        case reviewed or approved needs it to have been opened here (else
        :class:`UnopenedCasesError`, unless ``unopened_ok``: the user confirmed) and is
        refused for a scan that could not be read."""
        seen = self.find(label).status
        case = self.refresh(label)
        folder = case.paths.folder
        holder = held_by_other(case.paths.lock)
        if holder is not None:
            raise InputError(
                f"Case {label} is open for editing by {holder.describe()}; its status can "
                "be changed there (or once it is closed)."
            )
        if folder in self.problems:
            raise InputError(self.problems[folder])
        if status is CaseStatus.APPROVED:
            if not case.has_mask:
                raise InputError(
                    f"Case {label} has no saved mask ({case.paths.mask.name}); "
                    "save the mask before approving it for training."
                )
            if case.unsaved is not None:
                raise InputError(
                    f"Case {label} has unsaved edits; save or discard them before approving it for training."
                )
        if status in (CaseStatus.REVIEWED, CaseStatus.APPROVED):
            if case.unreadable:
                raise InputError(
                    f"Case {label}'s scan could not be read ({case.unreadable}); it cannot be marked "
                    f"'{status.value}'. Replace the file and open the case first."
                )
            if not case.opened and not unopened_ok:
                raise UnopenedCasesError([label], status)
        record = StatusStore(folder).set(case.case_id, status, user, expected=seen.status if seen is not None else None)
        return self._replace(replace(case, status=record))

    def mask_saved(self, label: str, user: str | None = None) -> tuple[WorklistCase, str]:
        """After a mask was saved: a new case becomes "in progress"; a reviewed or
        approved one goes back to "in progress", since the mask it was judged on
        changed. Returns the case and a message for the user ("" if unchanged)."""
        case = self.refresh(label)
        if case.status is None or case.status.status is CaseStatus.IN_PROGRESS:
            return case, ""
        before = case.status.status
        case = self.set_status(label, CaseStatus.IN_PROGRESS, user)
        if before is CaseStatus.NEW:
            return case, ""
        return case, (
            f"Case {label} was '{before.value}'; its mask changed, so it is 'in progress' again until reviewed."
        )


def scan_folder(folder: str | Path) -> Worklist:
    """The cases of ``folder``; a site folder holding ``train/``, ``test/``,
    ``normal/``... (sub-folders with cases) lists those cases as ``test/051``."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise InputError(f"{folder}: folder not found.")
    groups: list[tuple[str, Path]] = []
    if list_cases(folder):
        groups.append(("", folder))
    else:
        for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
            try:
                if list_cases(sub):
                    groups.append((sub.name + "/", sub))
            except InputError:
                continue
    if not groups:
        raise InputError(
            f"{folder}: no cases here (expected ct_NNN.nii.gz files, or sub-folders such as test/ holding them)."
        )
    wl = Worklist(folder, [])
    for prefix, sub in groups:
        try:
            statuses: dict[str, StatusRecord] | None = StatusStore(sub).read()
        except InputError as exc:
            wl.problems[sub] = str(exc)
            statuses = None
        seen = _seen(StatusStore(sub))
        for c in list_cases(sub):
            wl.cases.append(_case(prefix + c.case_id, case_files(c.ct_path), statuses, seen))
    return wl


@dataclass(frozen=True)
class CaseVolume(Progress):
    """A progress event that also carries one case's hematoma volume."""

    label: str = ""
    volume_ml: float | None = None  # None when there is no mask to measure
    source: str = ""  # "manual" or "model"; "" when nothing was measured
    error: str = ""  # why the mask could not be measured


def mask_file_volume_ml(path: Path) -> float:
    """Planimetric volume of a mask file on its own grid (no CT needed)."""
    data, affine = read_nifti(path)
    return float(np.count_nonzero(data)) * abs(float(np.linalg.det(affine[:3, :3]))) / 1000.0


def measure_volumes(
    cases: Iterable[WorklistCase], token: CancelToken = NEVER_CANCELLED
) -> Generator[Progress, None, dict[str, CaseVolume]]:
    """Each case's hematoma volume from its saved manual mask, or else from the
    model's prediction. Yields a :class:`CaseVolume` per case."""
    cases = list(cases)
    out: dict[str, CaseVolume] = {}
    for n, case in enumerate(cases):
        token.raise_if_cancelled()
        path, source = (
            (case.paths.mask, "manual")
            if case.has_mask
            else (case.paths.prediction, "model")
            if case.has_prediction
            else (None, "")
        )
        vol, error = None, ""
        if path is not None:
            try:
                vol = mask_file_volume_ml(path)
            except HemaRelayError as exc:
                error, source = str(exc), ""
        event = CaseVolume(
            STAGE_VOLUMES,
            n + 1,
            len(cases),
            f"case {case.label}",
            label=case.label,
            volume_ml=vol,
            source=source,
            error=error,
        )
        out[case.label] = event
        yield event
    return out


def report_jobs(cases: Iterable[WorklistCase], use_prediction: bool) -> tuple[list[ReportJob], list[str]]:
    """Volume-report jobs for the saved manual masks (or the model's predictions)
    of ``cases``, named by worklist label, and the labels left out for lack of
    that mask."""
    jobs, left_out = [], []
    for case in cases:
        if use_prediction and case.has_prediction:
            jobs.append(
                ReportJob(
                    case.label,
                    case.paths.ct,
                    case.paths.prediction,
                    prediction_label(case.paths.prediction),
                    model_version=prediction_model(case.paths.prediction),
                    **filing(case),
                )
            )
        elif not use_prediction and case.has_mask:
            jobs.append(
                ReportJob(
                    case.label,
                    case.paths.ct,
                    case.paths.mask,
                    f"manual ({case.paths.mask.name})",
                    **filing(case),
                    origin=read_origin(case.paths.mask_origin),
                )
            )
        else:
            left_out.append(case.label)
    return jobs, left_out


def reviewed_by(record: StatusRecord | None) -> str:
    """Who marked the case reviewed or approved it; "" while it is neither (or unknown)."""
    if record is None or record.status not in (CaseStatus.REVIEWED, CaseStatus.APPROVED):
        return ""
    return record.user or "a reader not named"


def filing(case: WorklistCase) -> dict[str, str]:
    """A report's reviewer and case status: the case's status record (the one source)."""
    if case.status is None:
        return {"reviewer": "", "case_status": "status file unreadable", "reviewed_by": ""}
    return {
        "reviewer": case.status.user or "nobody yet",
        "case_status": case.status.status.value,
        "reviewed_by": reviewed_by(case.status),
    }


def filing_for_ct(ct_path: Path) -> dict[str, str]:
    """The same for a CT given by path (``hemarelay report``): its folder's status file."""
    paths = case_files(ct_path)
    try:
        record = StatusStore(paths.folder).get(paths.case_id)
    except InputError:
        return filing(WorklistCase("", paths, None, False, False, None))
    return filing(WorklistCase("", paths, record, False, False, None))
