"""Opening, editing, saving and recovering a real case without Qt."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from core.annotation import Editor, Tool, open_case, pending_recovery, read_recovery, write_recovery
from core.cases.case_files import case_files, case_id, is_case_ct, provenance_path
from core.errors import CancelledError, InputError
from core.imaging.volume import Volume
from core.io import load_ct, load_mask, save_mask
from core.progress import CancelToken, run_to_end


@pytest.fixture()
def case_dir(site_a: Path, tmp_path: Path) -> Path:
    """site-a/test case 067 (the smallest) copied to a writable folder."""
    src = site_a / "test"
    for name in ("ct_067.nii.gz", "mask_067.nii.gz"):
        shutil.copy(src / name, tmp_path / name)
        os.chmod(tmp_path / name, 0o644)
    return tmp_path


def test_case_files_naming(tmp_path: Path):
    p = case_files(tmp_path / "ct_049.nii.gz")
    assert p.case_id == "049" and p.mask.name == "mask_049.nii.gz"
    assert p.prediction.name == "pred_049.nii.gz" and p.recovery.name == ".mask_049.recovery.npz"
    assert p.probabilities.name == "prob_049.nii.gz" and p.provenance.name == "pred_049.json"
    assert case_files(tmp_path / "scan.nii").mask.name == "mask_scan.nii.gz"
    assert case_files(tmp_path / "dicomdir").prediction.name == "pred_dicomdir.nii.gz"
    # the extension in any letter case, the one rule for every file of the case
    upper = case_files(tmp_path / "CT_050.NII.GZ")
    assert upper.case_id == "050" and upper.prediction.name == "pred_050.nii.gz"
    assert case_id(tmp_path / "scan.NII") == "scan" and case_id(tmp_path / "ct_") == "ct_"
    assert provenance_path(tmp_path / "pred_7.NII.GZ").name == "pred_7.json"
    (tmp_path / "mask_049.nii").write_bytes(b"")  # an existing .nii mask is the case's mask
    assert case_files(tmp_path / "ct_049.nii.gz").mask.name == "mask_049.nii"
    assert is_case_ct("ct_1.Nii.Gz") and not is_case_ct("mask_1.nii.gz") and not is_case_ct("ct_1.json")


def test_open_edit_save_reopen(case_dir: Path):
    ct_path = case_dir / "ct_067.nii.gz"
    s = run_to_end(open_case(ct_path))
    original = load_mask(case_dir / "mask_067.nii.gz", load_ct(ct_path)).data
    assert s.mask_on_disk and s.prediction is None and s.recovery is None
    assert np.array_equal(s.to_source(s.model.data), original)
    assert s.volume_ml() == pytest.approx(original.sum() * s.ct.voxel_volume_ml)
    k = s.first_slice_with_mask()
    assert k is not None and s.model.data[k].any()

    ed = Editor(s.model, s.hu, s.stack.pixel_mm)
    ed.press(Tool.BRUSH, 3, (100.0, 100.0))
    ed.drag((100.0, 140.0))
    ed.release()
    assert s.model.dirty and s.mask_label() == "manual (unsaved edits)"
    snap = s.snapshot()
    run_to_end(s.save(snap))
    s.saved(snap)
    assert not s.model.dirty and s.mask_label() == "manual (mask_067.nii.gz)"

    again = run_to_end(open_case(ct_path))
    assert np.array_equal(again.model.data, s.model.data)
    saved = load_mask(case_dir / "mask_067.nii.gz", again.ct).data
    assert int(saved.sum()) > int(original.sum())
    assert (load_ct(ct_path).data == s.ct.data).all()  # the CT was not touched


def test_recovery_round_trip_and_pending(case_dir: Path):
    ct_path = case_dir / "ct_067.nii.gz"
    s = run_to_end(open_case(ct_path))
    s.model.set_slice_region(5, np.ones((20, 30), bool), 1, (200, 200))
    snap = s.snapshot()
    time.sleep(0.02)
    path = s.write_recovery(snap)
    assert path.name == ".mask_067.recovery.npz" and path.stat().st_size < 200_000
    rec = pending_recovery(s.paths.recovery, s.paths.mask)
    assert rec is not None

    reopened = run_to_end(open_case(ct_path))
    assert reopened.recovery is not None and not reopened.model.dirty
    n = reopened.restore_recovery()
    assert n == 600 and np.array_equal(reopened.model.data, s.model.data)
    assert reopened.model.dirty and reopened.model.undo_label == "restore autosaved edits"
    snap = reopened.snapshot()
    run_to_end(reopened.save(snap))
    reopened.saved(snap)
    assert not s.paths.recovery.exists()  # saving removes the recovery file
    assert pending_recovery(s.paths.recovery, s.paths.mask) is None


def test_recovery_older_than_saved_mask_is_not_offered(case_dir: Path):
    s = run_to_end(open_case(case_dir / "ct_067.nii.gz"))
    s.write_recovery(s.snapshot())
    old = time.time() - 60
    os.utime(s.paths.recovery, (old, old))
    assert pending_recovery(s.paths.recovery, s.paths.mask) is None


def test_recovery_rejects_damage_and_other_geometry(tmp_path: Path):
    ct = Volume(np.zeros((8, 9, 3), np.int16), np.diag([0.5, 0.5, 5.0, 1.0]))
    mask = np.zeros(ct.shape, np.uint8)
    mask[1:3, 2:5, 1] = 1
    path = write_recovery(tmp_path / ".mask_x.recovery.npz", mask, ct)
    assert np.array_equal(read_recovery(path, ct), mask)
    other = Volume(ct.data, np.diag([0.7, 0.5, 5.0, 1.0]))
    with pytest.raises(InputError, match="another geometry"):
        read_recovery(path, other)
    path.write_bytes(b"not a zip file")
    with pytest.raises(InputError, match="damaged"):
        read_recovery(path, ct)


def test_open_case_errors_are_readable(case_dir: Path, tmp_path: Path):
    bad = case_dir / "ct_bad.nii.gz"
    bad.write_bytes(b"\x1f\x8b garbage, not a NIfTI")
    with pytest.raises(InputError, match="ct_bad.nii.gz"):
        run_to_end(open_case(bad))
    token = CancelToken()
    token.cancel()
    with pytest.raises(CancelledError):
        run_to_end(open_case(case_dir / "ct_067.nii.gz", token))


def test_prediction_loaded_and_bad_prediction_left_out(case_dir: Path):
    ct_path = case_dir / "ct_067.nii.gz"
    ct = load_ct(ct_path)
    pred = np.zeros(ct.shape, np.uint8)
    pred[200:220, 250:260, 10] = 1
    save_mask(pred, ct, case_dir / "pred_067.nii.gz")
    s = run_to_end(open_case(ct_path))
    assert s.prediction is not None and np.array_equal(s.to_source(s.prediction), pred)
    assert s.prediction_volume_ml() == pytest.approx(200 * ct.voxel_volume_ml)
    job = s.report_job(use_prediction=True)
    assert job.mask_source == "model prediction (pred_067.nii.gz, model version unknown)"
    assert np.array_equal(job.mask.data, pred)
    small = Volume(np.zeros((4, 4, 4), np.uint8), np.eye(4))
    save_mask(small.data, small, case_dir / "pred_067.nii.gz")
    s = run_to_end(open_case(ct_path))
    assert s.prediction is None and any("prediction was left out" in n for n in s.notes)
