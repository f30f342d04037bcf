"""The files of one case, all beside its CT.

``ct_051.nii.gz`` has its manual mask ``mask_051.nii.gz`` (the
:mod:`core.datasets` naming), the model's prediction ``pred_051.nii.gz`` (what
``hemarelay predict`` writes) and, while there are unsaved edits, the hidden
recovery file ``.mask_051.recovery.npz``. A CT with another name ``scan.nii.gz``
(or a DICOM folder ``scan/``) gets ``mask_scan.nii.gz`` and ``pred_scan.nii.gz``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_CT_NAME = re.compile(r"^(?:ct_)?(?P<stem>.+?)(?:\.nii(?:\.gz)?)?$")


@dataclass(frozen=True)
class CasePaths:
    case_id: str  # "051": the folder-local identifier
    ct: Path  # NIfTI file or DICOM folder
    mask: Path  # where the manual mask is (or will be) saved
    prediction: Path  # the model's mask, when present
    recovery: Path  # autosaved unsaved edits

    @property
    def folder(self) -> Path:
        return self.ct.parent


def case_stem(ct_path: Path) -> str:
    m = _CT_NAME.match(Path(ct_path).name)
    return m.group("stem") if m else Path(ct_path).name


def case_paths(ct_path: str | Path) -> CasePaths:
    ct = Path(ct_path)
    stem = case_stem(ct)
    folder = ct.parent
    existing = next((folder / f"mask_{stem}{ext}" for ext in (".nii.gz", ".nii")
                     if (folder / f"mask_{stem}{ext}").exists()), None)
    mask = existing or folder / f"mask_{stem}.nii.gz"
    return CasePaths(case_id=stem, ct=ct, mask=mask, prediction=folder / f"pred_{stem}.nii.gz",
                     recovery=folder / f".mask_{stem}.recovery.npz")
