"""Where the shared real data lives and how a site folder is laid out.

A site folder holds ``train/``, ``test/`` and optionally ``normal/`` with
``ct_NNN.nii.gz`` + ``mask_NNN.nii.gz`` pairs (the CT-ICH layout).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import InputError

DATA_ENV = "HEMARELAY_DATA"
_CT_RE = re.compile(r"^ct_(?P<id>.+?)\.nii(\.gz)?$")


def shared_data_root() -> Path:
    """``$HEMARELAY_DATA`` or ``../shared/data`` beside the project root."""
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env).expanduser().resolve()
    project_root = Path(__file__).resolve().parent.parent
    return (project_root.parent / "shared" / "data").resolve()


@dataclass(frozen=True)
class Case:
    case_id: str  # "049": the folder-local identifier, never sent off site
    ct_path: Path
    mask_path: Path | None  # None when the case has no manual mask yet


def list_cases(folder: Path, require_masks: bool = False) -> list[Case]:
    """Cases in one folder (e.g. ``site-a/train``), sorted by id."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: folder not found.")
    cases = []
    for p in sorted(folder.iterdir()):
        m = _CT_RE.match(p.name)
        if not m:
            continue
        cid = m.group("id")
        mask = next((folder / f"mask_{cid}{ext}" for ext in (".nii.gz", ".nii")
                     if (folder / f"mask_{cid}{ext}").exists()), None)
        if require_masks and mask is None:
            raise InputError(f"{p}: no mask_{cid}.nii.gz beside it.")
        cases.append(Case(cid, p, mask))
    return cases


def site_split(site_dir: Path, split: str, require_masks: bool = False) -> list[Case]:
    """Cases of ``site_dir/split`` (``train``, ``test`` or ``normal``); empty when absent."""
    d = Path(site_dir) / split
    return list_cases(d, require_masks) if d.is_dir() else []
