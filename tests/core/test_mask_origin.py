"""Provenance that follows the voxels (core.cases.mask_origin), on phantoms: the accepted parts,
the reader's changes, how a report names the mask, the file beside the mask."""

from __future__ import annotations

import numpy as np
import pytest

from core.cases.mask_origin import MaskOrigin, accepted_parts, corrections, mask_provenance, read_origin, write_origin


def _prediction() -> np.ndarray:
    p = np.zeros((6, 20, 20), np.uint8)
    p[1:3, 2:6, 2:6] = 1  # part A: 32 voxels
    p[4, 10:14, 10:14] = 1  # part B: 16 voxels
    return p


def test_accepted_parts_are_the_predicted_parts_wholly_in_the_mask():
    pred = _prediction()
    mask = np.zeros_like(pred)
    mask[4, 10:14, 10:14] = 1  # part B accepted
    mask[1, 2:4, 2:4] = 1  # a corner of A painted by hand: A is not accepted
    taken = accepted_parts(pred, mask)
    assert taken.sum() == 16 and taken[4, 10:14, 10:14].all()
    assert not accepted_parts(pred, np.zeros_like(pred)).any()


def test_corrections_and_how_a_report_names_the_mask(tmp_path):
    accepted = _prediction().astype(bool)
    origin = MaskOrigin("default-x (tensors sha256 7da1)", "7da1" * 16, "pred_1.nii.gz", accepted, "dr_b")
    same = accepted.astype(np.uint8)
    c = corrections(same, accepted, 0.5)
    assert (c.dice, c.added, c.removed, c.corrected) == (1.0, 0, 0, False)
    p = mask_provenance(origin, same, 0.5, "", "manual (mask_1.nii.gz)")
    assert p.source == "model default-x (tensors sha256 7da1), unreviewed" and p.automatic and not p.semiautomatic
    assert "reviewed by dr_a without changes" in mask_provenance(origin, same, 0.5, "dr_a", "m").source
    edited = same.copy()
    edited[4, 10:14, 10:14] = 0  # part B removed: 16 voxels
    edited[0, 0, 0:4] = 1  # 4 voxels added
    c = corrections(edited, accepted, 0.5)
    assert (c.added, c.removed) == (4, 16) and c.dice == pytest.approx(2 * 32 / (36 + 48))
    p = mask_provenance(origin, edited, 0.5, "dr_a", "m")
    assert p.source.startswith("model default-x (tensors sha256 7da1), corrected by dr_b (Dice 0.762")
    assert p.semiautomatic and not p.automatic and p.model == origin.model
    assert mask_provenance(None, edited, 0.5, "dr_a", "manual (mask_1.nii.gz)").source == "manual (mask_1.nii.gz)"

    path = write_origin(tmp_path / "mask_1.json", origin, c)
    back = read_origin(path, accepted.shape)
    assert back is not None and np.array_equal(back.accepted, accepted) and back.model == origin.model
    assert back.edited_by == "dr_b" and read_origin(path, (1, 2, 3)) is None  # another grid: not this mask's
    assert read_origin(tmp_path / "missing.json") is None
