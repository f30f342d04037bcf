"""Cross-validation folds by case over everything labelled that the project has.

Both CT-ICH sites' ``train/`` and ``test/`` cases (all with a hematoma mask) and
their ``normal/`` scans are dealt into ``k`` folds. Cases are sorted by their
manual volume and dealt in turn, in a seeded order within each run of ``k``, so
every fold holds small, middle and large bleeds; normal scans are dealt the
same way by name. A case is always held out whole (its slices never straddle
folds). The fold of a case depends only on the data and the seed, so every
recipe compared by cross-validation sees the same folds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.cases.case_files import Case
from core.cases.datasets import site_split

SITES = ("site-a", "site-b")
LABELLED_SPLITS = ("train", "test")


@dataclass(frozen=True)
class Fold:
    index: int
    train: list[Case]  # cases with a hematoma mask
    train_normals: list[Case]
    held_out: list[Case]
    held_out_normals: list[Case]


def labelled_cases(root: Path) -> tuple[list[Case], list[Case]]:
    """(every case with a mask, every normal scan) of the CT-ICH sites under ``root``."""
    cases = [c for s in SITES for split in LABELLED_SPLITS for c in site_split(root / s, split, require_masks=True)]
    normals = [c for s in SITES for c in site_split(root / s, "normal")]
    return cases, normals


def case_label(case: Case) -> str:
    """``site-a/test/051``: where a case comes from (stays on this machine)."""
    return f"{case.ct_path.parent.parent.name}/{case.ct_path.parent.name}/{case.case_id}"


def manual_voxels(case: Case) -> int:
    import nibabel as nib

    assert case.mask_path is not None
    return int(np.count_nonzero(np.asarray(nib.load(str(case.mask_path)).dataobj)))


def make_folds(root: Path, k: int = 3, seed: int = 0) -> list[Fold]:
    cases, normals = labelled_cases(root)
    order = sorted(cases, key=lambda c: (manual_voxels(c), case_label(c)))
    rng = np.random.default_rng(seed)
    fold_of: dict[Path, int] = {}
    for start in range(0, len(order), k):
        run = order[start : start + k]
        for case, f in zip(run, rng.permutation(k)[: len(run)]):
            fold_of[case.ct_path] = int(f)
    normal_order = sorted(normals, key=case_label)
    for n, case in enumerate(normal_order):
        fold_of[case.ct_path] = n % k
    folds = []
    for f in range(k):
        folds.append(
            Fold(
                f,
                [c for c in cases if fold_of[c.ct_path] != f],
                [c for c in normals if fold_of[c.ct_path] != f],
                [c for c in cases if fold_of[c.ct_path] == f],
                [c for c in normals if fold_of[c.ct_path] == f],
            )
        )
    return folds
