"""A site's worklist: the cases in a folder and each case's review status.

A case is a ``ct_NNN.nii.gz`` with, beside it, an optional manual mask
``mask_NNN.nii.gz``, an optional model prediction ``pred_NNN.nii.gz`` and,
while edits are unsaved, a hidden recovery file (:mod:`core.case_files`).

The status of each case (new, in progress, reviewed, approved for training),
who set it and when, is kept in a small JSON file beside the cases
(``hemarelay-status.json``), with the history of changes, so approval for
training survives restarts and can be audited. Every write re-reads the file
first and replaces it atomically.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import enum
import getpass
import hashlib
import json
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Generator, Iterable, Iterator

import numpy as np

from .case_files import Case, CaseFiles, case_files, existing_mask
from .annotation.case_lock import held_by_other
from .provenance import prediction_label, prediction_model
from .annotation.recovery import RecoveryFile, pending_recovery
from .datasets import list_cases
from .errors import HemaRelayError, InputError
from .io import atomic_write_text
from .io.nifti import read_nifti
from .progress import NEVER_CANCELLED, CancelToken, Progress
from .reports import ReportJob

STATUS_FILE = "hemarelay-status.json"
FORMAT = 1
STAGE_VOLUMES = "Measuring volumes"


class CaseStatus(enum.Enum):
    NEW = "new"
    IN_PROGRESS = "in progress"
    REVIEWED = "reviewed"
    APPROVED = "approved for training"

    @classmethod
    def parse(cls, text: str) -> "CaseStatus":
        for s in cls:
            if s.value == text or s.name.lower() == str(text).lower():
                return s
        raise InputError(f"unknown case status {text!r}; one of: " + ", ".join(s.value for s in cls) + ".")


@dataclass(frozen=True)
class StatusRecord:
    status: CaseStatus
    user: str = ""  # who set it ("" for a case nobody touched)
    changed_at: str = ""  # ISO 8601 with time zone
    mask_sha256: str = ""  # approval: the sha256 of the mask file approved (a changed mask is not)

    def to_json(self) -> dict:
        d = {"status": self.status.value, "user": self.user, "changed_at": self.changed_at}
        return d | ({"mask_sha256": self.mask_sha256} if self.mask_sha256 else {})

    @classmethod
    def from_json(cls, d: dict) -> "StatusRecord":
        return cls(
            CaseStatus.parse(d["status"]),
            str(d.get("user", "")),
            str(d.get("changed_at", "")),
            str(d.get("mask_sha256", "")),
        )


NEW_RECORD = StatusRecord(CaseStatus.NEW)


def default_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name in the environment or passwd
        return "unknown"


def _now() -> str:
    return _dt.datetime.now().astimezone().isoformat(timespec="seconds")


class StatusStore:
    """The status file of one folder of cases."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / STATUS_FILE

    def _read_raw(self) -> dict:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {"format": FORMAT, "cases": {}}
        except OSError as exc:
            raise InputError(f"{self.path}: cannot read the case status file ({exc.strerror or exc}).") from None
        try:
            raw = json.loads(text)
            if not isinstance(raw, dict) or not isinstance(raw.get("cases"), dict):
                raise ValueError("no 'cases' table")
            for d in raw["cases"].values():
                StatusRecord.from_json(d)
        except (ValueError, KeyError, TypeError, AttributeError, InputError) as exc:
            raise InputError(
                f"{self.path}: the case status file is damaged ({exc}); statuses "
                "cannot be shown or changed until it is repaired or removed."
            ) from None
        return raw

    def read(self) -> dict[str, StatusRecord]:
        return {cid: StatusRecord.from_json(d) for cid, d in self._read_raw()["cases"].items()}

    def get(self, case_id: str) -> StatusRecord:
        return self.read().get(case_id, NEW_RECORD)

    def history(self, case_id: str) -> list[StatusRecord]:
        entry = self._read_raw()["cases"].get(case_id)
        if entry is None:
            return []
        return [StatusRecord.from_json(h) for h in entry.get("history", [])]

    def set(
        self,
        case_id: str,
        status: CaseStatus,
        user: str | None = None,
        when: str | None = None,
        expected: CaseStatus | None = None,
    ) -> StatusRecord:
        """Record ``status``; with ``expected``, only if the case still has that status
        (compare-and-swap: a window acting on what it showed a while ago cannot
        overwrite a newer change). The read-modify-write runs under the folder's
        status lock, so two windows changing two cases never lose one change."""
        with _status_lock(self.folder / STATUS_LOCK):
            raw = self._read_raw()  # re-read: another window may have written since
            entry = raw["cases"].get(case_id, {})
            current = StatusRecord.from_json(entry) if entry else NEW_RECORD
            if expected is not None and current.status is not expected:
                who = f" by {current.user}" if current.user else ""
                raise StatusConflictError(
                    f"Case {case_id} is now '{current.status.value}' (changed{who} at "
                    f"{current.changed_at[:16].replace('T', ' ') or 'an unknown time'}), not "
                    f"'{expected.value}' as shown here; its status was not changed. Look again and retry."
                )
            # Approval is of a mask: its bytes' hash is recorded, and a changed file is no longer approved.
            mask_hash = mask_sha256(existing_mask(self.folder, case_id)) if status is CaseStatus.APPROVED else ""
            record = StatusRecord(status, user if user is not None else default_user(), when or _now(), mask_hash)
            history = list(entry.get("history", []))
            history.append(record.to_json())
            raw["cases"][case_id] = {**record.to_json(), "history": history}
            raw["format"] = FORMAT
            atomic_write_text(self.path, json.dumps(raw, indent=2, sort_keys=True) + "\n")
        return record


class StatusConflictError(InputError):
    """The case's status changed since it was shown (compare-and-swap failed)."""


STATUS_LOCK = ".hemarelay-status.lock"


@contextlib.contextmanager
def _status_lock(path: Path, wait_s: float = 10.0, stale_s: float = 30.0) -> Iterator[None]:
    """A short exclusive lock around one read-modify-write of the status file."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            break
        except FileExistsError:
            try:
                if time.time() - path.stat().st_mtime > stale_s:  # its writer died mid-update
                    path.unlink()
                    continue
            except FileNotFoundError:
                continue
            if time.monotonic() > deadline:
                raise InputError(
                    f"{path.parent}: the case status file is being changed by another window; try again."
                ) from None
            time.sleep(0.02)
        except OSError as exc:
            raise InputError(f"{path.parent}: cannot lock the case status file ({exc.strerror or exc}).") from None
    try:
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def mask_sha256(path: Path | None) -> str:
    """The sha256 of a saved mask file ("" when there is none)."""
    if path is None:
        return ""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return ""


@dataclass(frozen=True)
class WorklistCase:
    label: str  # "051", or "test/051" in a site folder with train/test/normal
    paths: CaseFiles
    status: StatusRecord | None  # None when the folder's status file is unreadable
    has_mask: bool
    has_prediction: bool
    unsaved: RecoveryFile | None  # autosaved edits newer than the saved mask
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


def _case(label: str, paths: CaseFiles, statuses: dict[str, StatusRecord] | None) -> WorklistCase:
    status = None if statuses is None else statuses.get(paths.case_id, NEW_RECORD)
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
        changed,
    )


@dataclass
class Worklist:
    folder: Path
    cases: list[WorklistCase]
    problems: dict[Path, str] = field(default_factory=dict)  # case folder -> status file error

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
        return self._replace(_case(case.label, case_files(case.paths.ct), statuses))

    def set_status(self, label: str, status: CaseStatus, user: str | None = None) -> WorklistCase:
        """Record a new status. Approval for training needs a saved mask and no
        unsaved autosaved edits. Refused when the case is open for editing in
        another window, or its status changed since this worklist read it."""
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
        for c in list_cases(sub):
            wl.cases.append(_case(prefix + c.case_id, case_files(c.ct_path), statuses))
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
                    case.label, case.paths.ct, case.paths.mask, f"manual ({case.paths.mask.name})", **filing(case)
                )
            )
        else:
            left_out.append(case.label)
    return jobs, left_out


def filing(case: WorklistCase) -> dict[str, str]:
    """A report's reviewer and case status: the case's status record (the one source)."""
    if case.status is None:
        return {"reviewer": "", "case_status": "status file unreadable"}
    return {"reviewer": case.status.user or "nobody yet", "case_status": case.status.status.value}


def filing_for_ct(ct_path: Path) -> dict[str, str]:
    """The same for a CT given by path (``hemarelay report``): its folder's status file."""
    paths = case_files(ct_path)
    try:
        record = StatusStore(paths.folder).get(paths.case_id)
    except InputError:
        return filing(WorklistCase("", paths, None, False, False, None))
    return filing(WorklistCase("", paths, record, False, False, None))
