"""The files of one case: the one naming rule, and the one case type.

A case is a CT beside its masks, named by the CT (the CT-ICH layout that
``hemarelay`` reads and writes everywhere):

=====================  ==================================  =========================
CT                      ``ct_051.nii.gz`` (or ``.nii``)     ``scan.nii`` / ``scan/``
case id                 ``051``                            ``scan``
manual mask             ``mask_051.nii.gz`` (or ``.nii``)  ``mask_scan.nii.gz``
model prediction        ``pred_051.nii.gz``                ``pred_scan.nii.gz``
probabilities           ``prob_051.nii.gz``                ``prob_scan.nii.gz``
provenance (model)      ``pred_051.json``                  ``pred_scan.json``
another model's         ``pred_051.m-<model>.nii.gz``      ``pred_scan.m-<model>.nii.gz``
prediction (kept)
mask's origin           ``mask_051.json``                  ``mask_scan.json``
unsaved edits           ``.mask_051.recovery.npz``         ``.mask_scan.recovery.npz``
measurements            ``measurements_051.json``          ``measurements_scan.json``
=====================  ==================================  =========================

A prediction is never overwritten: a model other than the one that made the
case's prediction writes its own beside it (``<model>``: the first 12 hex digits
of its weights tensors' sha256), and choosing it for the case keeps the one it
replaces the same way.

The NIfTI extension is recognised in any letter case (``CT_051.NII.GZ``); a
DICOM folder's case id is the folder's name. A NIfTI case's files go beside its
CT. A DICOM series' files never go into its folder or that folder's parent
(a PACS export, a CD, a read-only share, where other series lie): they go into
a work folder of their own in this user's state folder,
``<state>/dicom-cases/<series folder>-<hash of its full path>/`` (status,
mask, prediction, lock and recovery files alike), so reopening the series
finds them. Predictions of ``hemarelay predict -o DIR`` go into ``DIR``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_NIFTI_EXT = re.compile(r"\.nii(\.gz)?$", re.IGNORECASE)
_CT_PREFIX = re.compile(r"^ct_(?=.)", re.IGNORECASE)
MASK_EXTS = (".nii.gz", ".nii")  # a manual mask may be either; new masks are .nii.gz


def strip_nifti(name: str) -> str:
    """``"ct_051.NII.GZ"`` -> ``"ct_051"``; other names unchanged."""
    return _NIFTI_EXT.sub("", name)


def is_nifti_name(name: str) -> bool:
    return _NIFTI_EXT.search(name) is not None


def is_case_ct(path: str | Path) -> bool:
    """A CT of a site folder: ``ct_<id>.nii(.gz)``, or a DICOM folder ``ct_<id>/``
    (a series retrieved from the PACS: :mod:`core.pacs.retrieve`)."""
    p = Path(path)
    if _CT_PREFIX.match(p.name) is None:
        return False
    return is_nifti_name(p.name) or p.is_dir()


def case_id(ct_path: str | Path) -> str:
    """``ct_049.nii.gz`` -> ``049``; ``scan.nii`` -> ``scan``; a folder keeps its name."""
    stem = strip_nifti(Path(ct_path).name)
    return _CT_PREFIX.sub("", stem, count=1)


def provenance_path(mask_path: str | Path) -> Path:
    """``pred_049.nii.gz`` -> ``pred_049.json``: which model made the mask."""
    p = Path(mask_path)
    return p.with_name(strip_nifti(p.name) + ".json")


def measurements_path(mask_path: str | Path) -> Path:
    """``mask_051.nii.gz`` -> ``measurements_051.json`` beside it: the measurements
    made on that mask (another mask name keeps its stem: ``measurements_seg.json``)."""
    p = Path(mask_path)
    stem = strip_nifti(p.name)
    return p.with_name(f"measurements_{stem.removeprefix('mask_')}.json")


# inside a case folder retrieved from the PACS: where the series came from (core.pacs.retrieve)
RETRIEVED_RECORD = ".hemarelay-pacs.json"


def work_folder(ct: Path) -> Path:
    """Where the files of the case of ``ct`` go: beside a NIfTI CT; for a DICOM folder, a
    folder of its own in this user's state folder (never in or beside the series: a PACS
    export, a CD, a read-only share). A series that this program retrieved from the PACS
    into a site's worklist folder (it holds :data:`RETRIEVED_RECORD`) is one of that
    worklist's cases: its files go beside it, where the worklist and training find them."""
    if not ct.is_dir() or (ct / RETRIEVED_RECORD).is_file():
        return ct.parent
    import hashlib

    from ..user_dirs import state_dir

    key = hashlib.sha256(str(ct.resolve()).encode("utf-8", "surrogateescape")).hexdigest()[:12]
    name = re.sub(r"[^A-Za-z0-9._-]", "_", ct.name)[:60] or "series"
    return state_dir() / "dicom-cases" / f"{name}-{key}"


@dataclass(frozen=True)
class CaseFiles:
    case_id: str  # "051": the folder-local identifier, never sent off site
    ct: Path  # NIfTI file or DICOM folder
    mask: Path  # where the manual mask is (or will be) saved
    prediction: Path  # the model's mask, when present
    probabilities: Path  # the model's probability map, when written
    recovery: Path  # autosaved unsaved edits
    folder: Path  # where the case's own files go (core.cases.case_files.work_folder); its status file too

    @property
    def provenance(self) -> Path:
        return provenance_path(self.prediction)

    def kept_prediction(self, model_tag: str) -> Path:
        """The prediction of the model ``model_tag`` kept beside the case's own prediction."""
        if not re.fullmatch(r"[A-Za-z0-9-]{1,40}", model_tag):
            raise ValueError(f"not a model tag: {model_tag!r}")
        p = self.prediction
        return p.with_name(f"{strip_nifti(p.name)}.m-{model_tag}.nii.gz")

    @property
    def mask_origin(self) -> Path:
        """Which model the manual mask started from and how the reviewer changed it."""
        return provenance_path(self.mask)

    @property
    def measurements(self) -> Path:
        return measurements_path(self.mask)

    @property
    def lock(self) -> Path:
        """The case's lock file while a window edits it (annotation/case_lock.py)."""
        return self.folder / f".case_{self.case_id}.lock"


def existing_mask(folder: Path, cid: str) -> Path | None:
    """The manual mask ``mask_<id>.nii.gz`` (or ``.nii``) in ``folder``, if there is one."""
    return next((folder / f"mask_{cid}{ext}" for ext in MASK_EXTS if (folder / f"mask_{cid}{ext}").exists()), None)


def case_files(ct_path: str | Path, out_dir: str | Path | None = None) -> CaseFiles:
    """Every file of the case of ``ct_path``; predictions in ``out_dir`` when given."""
    ct = Path(ct_path)
    cid = case_id(ct)
    folder = work_folder(ct)
    out = Path(out_dir) if out_dir is not None else folder
    return CaseFiles(
        case_id=cid,
        ct=ct,
        mask=existing_mask(folder, cid) or folder / f"mask_{cid}.nii.gz",
        prediction=out / f"pred_{cid}.nii.gz",
        probabilities=out / f"prob_{cid}.nii.gz",
        recovery=folder / f".mask_{cid}.recovery.npz",
        folder=folder,
    )


@dataclass(frozen=True)
class Case:
    """A CT and its reference mask: what training, evaluation and reports read."""

    case_id: str  # "049", or a worklist label ("test/049"); never sent off site
    ct_path: Path
    mask_path: Path | None  # None when the case has no manual mask (yet): a normal scan
