"""Where the shared real data lives and how a site folder is laid out.

A site folder holds ``train/``, ``test/`` and optionally ``normal/`` with
``ct_NNN.nii.gz`` + ``mask_NNN.nii.gz`` pairs (the CT-ICH layout).
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import InputError
from .case_files import Case, case_id, existing_mask, is_case_ct

DATA_ENV = "HEMARELAY_DATA"


def shared_data_root() -> Path:
    """``$HEMARELAY_DATA`` or ``../shared/data`` beside the project root."""
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env).expanduser().resolve()
    project_root = Path(__file__).resolve().parents[2]  # core/cases/datasets.py -> the project
    return (project_root.parent / "shared" / "data").resolve()


def list_cases(folder: Path, require_masks: bool = False) -> list[Case]:
    """Cases in one folder (e.g. ``site-a/train``), sorted by id."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: folder not found.")
    cases = []
    for p in sorted(folder.iterdir()):
        if not is_case_ct(p):
            continue
        cid = case_id(p)
        mask = existing_mask(folder, cid)
        if require_masks and mask is None:
            raise InputError(f"{p}: no mask_{cid}.nii.gz beside it.")
        cases.append(Case(cid, p, mask))
    return cases


def site_split(site_dir: Path, split: str, require_masks: bool = False) -> list[Case]:
    """Cases of ``site_dir/split`` (``train``, ``test`` or ``normal``); empty when absent."""
    d = Path(site_dir) / split
    return list_cases(d, require_masks) if d.is_dir() else []
