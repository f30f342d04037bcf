"""The window's UI flags, computed from the case state without Qt (core.cases.ui_flags)."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from core.annotation import open_case
from core.cases.ui_flags import UIFlags, ui_flags
from core.progress import run_to_end


def phantom_case(folder: Path, with_prediction: bool = False) -> Path:
    """A 24 x 24 x 6 CT (0.5 x 0.5 x 5 mm): air around 30 HU brain with a 60 HU blob;
    optionally a prediction of the blob beside it."""
    ct = np.full((24, 24, 6), -1000, np.int16)
    ct[2:22, 2:22] = 30
    ct[8:14, 8:14, 2:4] = 60
    affine = np.diag([0.5, 0.5, 5.0, 1.0])
    path = folder / "ct_001.nii.gz"
    nib.save(nib.Nifti1Image(ct, affine), path)
    if with_prediction:
        nib.save(nib.Nifti1Image((ct > 45).astype(np.uint8), affine), folder / "pred_001.nii.gz")
    return path


def test_no_case_enables_nothing_of_a_case():
    assert ui_flags(None) == UIFlags()
    assert ui_flags(None).names() == ()


def test_flags_follow_the_open_case(tmp_path: Path):
    s = run_to_end(open_case(phantom_case(tmp_path)))
    try:
        f = ui_flags(s)
        assert f.case_open and f.reports
        assert not f.has_prediction  # nothing to accept
        assert not f.can_undo and not f.can_redo
        s.model.begin_stroke("brush")
        s.model.set_box((slice(0, 1), slice(0, 2), slice(0, 2)), np.ones((1, 2, 2), bool), 1)
        s.model.end_stroke()
        assert ui_flags(s).can_undo and not ui_flags(s).can_redo
        s.model.undo()
        assert ui_flags(s).can_redo and not ui_flags(s).can_undo
    finally:
        s.close()


def test_a_prediction_enables_accepting_it(tmp_path: Path):
    s = run_to_end(open_case(phantom_case(tmp_path, with_prediction=True)))
    try:
        assert ui_flags(s).has_prediction
    finally:
        s.close()
