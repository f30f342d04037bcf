"""core.cases.worklist: folder scan, status file beside the cases, volumes."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from core.cases.worklist import (
    STATUS_FILE,
    CaseStatus,
    CaseVolume,
    StatusStore,
    UnopenedCasesError,
    measure_volumes,
    report_jobs,
    scan_folder,
)
from core.errors import InputError
from core.io import load_ct, load_mask, save_mask
from core.progress import run_to_end


def _site(site_a: Path, root: Path) -> Path:
    """A site folder with test/ (051 with mask, 067 with mask) and train/ (one CT without mask)."""
    (root / "test").mkdir(parents=True)
    (root / "train").mkdir()
    for name in ("ct_051.nii.gz", "mask_051.nii.gz", "ct_067.nii.gz", "mask_067.nii.gz"):
        shutil.copy(site_a / "test" / name, root / "test" / name)
    shutil.copy(site_a / "test" / "ct_052.nii.gz", root / "train" / "ct_052.nii.gz")
    for p in root.rglob("*.nii.gz"):
        os.chmod(p, 0o644)
    return root


def test_scan_site_folder_and_status_survives_restart(site_a: Path, tmp_path: Path):
    root = _site(site_a, tmp_path / "site")
    wl = scan_folder(root)
    assert [c.label for c in wl.cases] == ["test/051", "test/067", "train/052"]
    assert all(c.status is not None and c.status.status is CaseStatus.NEW for c in wl.cases)
    assert wl.find("train/052").has_mask is False and wl.find("test/051").has_mask
    with pytest.raises(UnopenedCasesError, match="test/067 have not been opened"):
        wl.set_status("test/067", CaseStatus.REVIEWED, user="dr.a")
    wl.mark_opened("test/067", "dr.a")  # the application records each case it opened
    case = wl.set_status("test/067", CaseStatus.REVIEWED, user="dr.a")
    assert case.status.user == "dr.a" and case.status.changed_at
    wl.set_status("test/067", CaseStatus.APPROVED, user="dr.b")
    # a fresh scan (a restart) reads the file beside the cases
    again = scan_folder(root)
    rec = again.find("test/067").status
    assert rec.status is CaseStatus.APPROVED and rec.user == "dr.b"
    assert (root / "test" / STATUS_FILE).exists() and not (root / "train" / STATUS_FILE).exists()
    hist = StatusStore(root / "test").history("067")
    assert [h.status for h in hist] == [CaseStatus.REVIEWED, CaseStatus.APPROVED]
    raw = json.loads((root / "test" / STATUS_FILE).read_text())
    assert raw["cases"]["067"]["status"] == "approved for training"


def test_approval_needs_a_saved_mask_and_no_unsaved_edits(site_a: Path, tmp_path: Path):
    root = _site(site_a, tmp_path / "site")
    wl = scan_folder(root)
    with pytest.raises(InputError, match="no saved mask"):
        wl.set_status("train/052", CaseStatus.APPROVED, user="u")
    (root / "test" / ".mask_051.recovery.npz").write_bytes(b"x")
    os.utime(root / "test" / "mask_051.nii.gz", (1, 1))  # the recovery file is newer
    with pytest.raises(InputError, match="unsaved edits"):
        wl.set_status("test/051", CaseStatus.APPROVED, user="u")
    assert scan_folder(root).find("test/051").unsaved is not None


def test_approved_and_reviewed_are_one_query_on_saved_judged_masks(site_a: Path, tmp_path: Path):
    root = _site(site_a, tmp_path / "site")
    wl = scan_folder(root)
    wl.set_status("test/051", CaseStatus.APPROVED, user="u", unopened_ok=True)
    wl.set_status("test/067", CaseStatus.REVIEWED, user="u", unopened_ok=True)
    wl.set_status("train/052", CaseStatus.REVIEWED, user="u", unopened_ok=True)  # no mask: never judged
    wl = scan_folder(root)
    assert [c.case_id for c in wl.approved()] == ["test/051"]
    assert [c.case_id for c in wl.reviewed()] == ["test/051", "test/067"]  # approved counts as reviewed
    assert wl.judged(CaseStatus.NEW) == [] and [c.case_id for c in wl.judged(CaseStatus.REVIEWED)] == ["test/067"]
    assert wl.approved()[0].mask_path == root / "test" / "mask_051.nii.gz"
    (root / "test" / ".mask_051.recovery.npz").write_bytes(b"x")  # edits autosaved since approval
    os.utime(root / "test" / "mask_051.nii.gz", (1, 1))
    assert scan_folder(root).approved() == []  # the mask on disk is no longer the one approved


def test_saving_a_mask_moves_status_back_to_in_progress(site_a: Path, tmp_path: Path):
    root = _site(site_a, tmp_path / "site")
    wl = scan_folder(root)
    case, msg = wl.mask_saved("train/052", user="u")
    assert case.status.status is CaseStatus.IN_PROGRESS and msg == ""
    wl.set_status("test/051", CaseStatus.APPROVED, user="u", unopened_ok=True)  # confirmed by the user
    case, msg = wl.mask_saved("test/051", user="u")
    assert case.status.status is CaseStatus.IN_PROGRESS and "approved for training" in msg


def test_damaged_status_file_is_reported_not_overwritten(site_a: Path, tmp_path: Path):
    root = _site(site_a, tmp_path / "site")
    bad = root / "test" / STATUS_FILE
    bad.write_text("{ not json")
    wl = scan_folder(root)
    assert wl.find("test/051").status is None and "damaged" in wl.problems[root / "test"]
    assert wl.find("train/052").status is not None
    with pytest.raises(InputError, match="damaged"):
        wl.set_status("test/051", CaseStatus.REVIEWED, user="u")
    assert bad.read_text() == "{ not json"


def test_volumes_from_mask_or_prediction(site_a: Path, tmp_path: Path):
    root = _site(site_a, tmp_path / "site")
    ct = load_ct(root / "train" / "ct_052.nii.gz")
    pred = np.zeros(ct.shape, np.uint8)
    pred[100:110, 100:110, 5] = 1
    save_mask(pred, ct, root / "train" / "pred_052.nii.gz")
    (root / "test" / "mask_067.nii.gz").write_bytes(b"broken")
    wl = scan_folder(root)
    events = []
    gen = measure_volumes(wl.cases)
    while True:
        try:
            events.append(next(gen))
        except StopIteration as stop:
            vols = stop.value
            break
    assert all(isinstance(e, CaseVolume) for e in events) and events[-1].done == 3
    ct51 = load_ct(root / "test" / "ct_051.nii.gz")
    m51 = load_mask(root / "test" / "mask_051.nii.gz", ct51).data
    assert vols["test/051"].volume_ml == pytest.approx(m51.sum() * ct51.voxel_volume_ml)
    assert vols["test/051"].source == "manual"
    assert vols["train/052"].source == "model"
    assert vols["train/052"].volume_ml == pytest.approx(100 * ct.voxel_volume_ml)
    assert vols["test/067"].volume_ml is None and "mask_067.nii.gz" in vols["test/067"].error


def test_scan_errors(tmp_path: Path):
    with pytest.raises(InputError, match="no cases"):
        scan_folder(tmp_path)
    with pytest.raises(InputError, match="not found"):
        scan_folder(tmp_path / "missing")
    with pytest.raises(InputError, match="unknown case status"):
        CaseStatus.parse("done")
    assert run_to_end(measure_volumes([])) == {}


def test_report_jobs_name_cases_by_label_and_the_mask_measured(site_a: Path, tmp_path: Path):
    root = _site(site_a, tmp_path / "site")
    wl = scan_folder(root)
    jobs, left_out = report_jobs(wl.cases, use_prediction=False)
    assert [j.case for j in jobs] == ["test/051", "test/067"] and left_out == ["train/052"]
    assert jobs[0].mask == root / "test" / "mask_051.nii.gz"
    assert jobs[0].mask_source == "manual (mask_051.nii.gz)"
    jobs, left_out = report_jobs(wl.cases, use_prediction=True)
    assert jobs == [] and len(left_out) == 3


def test_an_unreadable_scan_cannot_be_marked_reviewed(site_a: Path, tmp_path: Path):
    root = _site(site_a, tmp_path / "site")
    wl = scan_folder(root)
    wl.mark_unreadable("test/051", "ct_051.nii.gz is truncated")
    assert scan_folder(root).find("test/051").unreadable  # kept in the status file
    for confirmed in (False, True):
        with pytest.raises(InputError, match="could not be read.*truncated"):
            wl.set_status("test/051", CaseStatus.REVIEWED, user="u", unopened_ok=confirmed)
    wl.set_status("test/051", CaseStatus.IN_PROGRESS, user="u")  # other statuses are fine
    wl.mark_opened("test/051", "u")  # opened later (the file was replaced): readable again
    assert not wl.find("test/051").unreadable and wl.find("test/051").opened
    assert wl.set_status("test/051", CaseStatus.REVIEWED, user="u").status.status is CaseStatus.REVIEWED
