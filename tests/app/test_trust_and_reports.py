"""Issue 14 in the window, on real cases: model gates, one state per case, fileable
reports, DICOM SEG export and mask comparison."""

from __future__ import annotations

import csv
import io
import json
import re

import numpy as np
import pytest
from PySide6.QtWidgets import QDialog, QMessageBox

from core.cases.worklist import CaseStatus, StatusStore, scan_folder
from core.io import load_ct, load_mask, save_mask
from core.io.dicom_source import mask_on_source_frames, read_frames, series_files
from core.reports.agreement import compare_volumes
from core.reports.seg import read_seg_on_frames
from core.site.setup import SiteSetup

from gui_helpers import open_case
from ring_helpers import TINY_TURN, solo_site


def _dialogs(w, name: str = "errorDialog") -> list[str]:
    return [b.text() for b in w.findChildren(QMessageBox, name) if b.isVisible()]


def _wait(qtbot, cond, timeout_s: float, what: str) -> None:
    try:
        qtbot.waitUntil(cond, timeout=int(timeout_s * 1000))
    except AssertionError:
        raise AssertionError(f"timed out after {timeout_s:g} s waiting for: {what}") from None


def _row_text(w, label: str, col: int) -> str:
    m = w.worklist_panel.model
    return m.data(m.index(m.row_of(label), col))


def test_training_on_one_case_is_gated_end_to_end(qtbot, window, site):
    """Issue 14's scenario on the embedded ring: one case approved, "Train my turn".
    Refused before any process with the preset's minimum; forced to a minimum of 1, v1 is
    judged on no case it was not trained on, is marked, "Use v1" asks naming both scores,
    and a version not chosen is never applied to the next case."""
    w = window
    StatusStore(site).set("067", CaseStatus.APPROVED, "dr_a")
    w.open_folder(site)
    ended: list[tuple[bool, str]] = []
    w.ring_dock.ring.trainingEnded.connect(lambda end: ended.append((end.published, end.message)))
    w.apply_site(solo_site(site, poll_s=2.0))  # the paper's small network: seconds per turn
    _wait(qtbot, lambda: w.ring_dock.panel.train_button.isEnabled(), 30, "Train my turn enabled")
    assert w.ring_dock.status_label.text().startswith("Ring: local (no server)")  # no server configured
    w.ring_dock.panel.train_button.click()
    assert ended and not ended[0][0] and "needs at least 5" in ended[0][1]
    assert w.ring_dock.ring.train_job is None  # refused before any process started
    assert any("Only 1 case(s)" in t for t in _dialogs(w))

    w.apply_site(w.ring_dock.ring.setup.with_(overrides=TINY_TURN + ("min_approved=1",)))
    _wait(qtbot, lambda: w.ring_dock.panel.train_button.isEnabled(), 30, "Train my turn enabled again")
    messages: list[str] = []
    w.ring_dock.ring.message.connect(messages.append)
    w.ring_dock.panel.train_button.click()
    assert w.ring_dock.ring.train_job is not None
    assert any("on 1 case(s) approved for training" in m for m in messages)
    _wait(qtbot, lambda: len(ended) == 2, 600, "the turn to end")
    assert ended[1][0], ended

    def v1_judged():  # the ring's versions come first (newest first), the shipped default model last
        vs = w.ring_dock.ring.versions()
        return bool(vs) and vs[0].version == 1 and vs[0].score is not None

    _wait(qtbot, v1_judged, 180, "v1 kept and judged")
    v1 = w.ring_dock.ring.versions()[0]
    assert v1.version == 1 and v1.score.n_cases == 0 and v1.score.n_excluded == 1
    table = w.ring_dock.models.table
    assert table.item(0, 6).text() == "not enough cases (0)" and table.item(0, 9).text() == "⚠ marked"
    assert "not enough cases to judge" in w.ring_dock.models.offer.text()

    asked: list[tuple[str, str]] = []
    answer = ["Cancel"]
    w.controller.ask = lambda title, text, buttons: asked.append((title, text)) or answer[0]
    w.ring_dock.models.offer_button.click()  # "Use v1"
    assert asked and "not enough cases to judge" in asked[0][1]
    assert "The model in use, the default model" in asked[0][1]  # issue 26: never "no model in use"
    assert w.ring_dock.ring.chosen().shipped
    open_case(qtbot, w, site, "052")  # the next case: v1, not chosen, never predicts it
    _wait(
        qtbot,
        lambda: w.predictions.job is None or not w.predictions.job.running,
        300,
        "any prediction of the open case (the shipped default model may predict it)",
    )
    assert "v1" not in w.display_panel.prediction_source.text()
    if (site / "pred_052.json").exists():
        assert not json.loads((site / "pred_052.json").read_text())["model_version"].startswith("v1")

    answer[0] = "Use v1 anyway"
    w.ring_dock.models.offer_button.click()
    assert w.ring_dock.ring.chosen().version == 1
    if (site / "pred_052.nii.gz").exists():  # v1's prediction sits beside the case's until chosen
        _wait(qtbot, lambda: w.display_panel.candidate.isVisible(), 300, "v1's prediction beside the case's")
        w.display_panel.candidate.use_button.click()
    _wait(
        qtbot,
        lambda: "v1 from site solo" in w.display_panel.prediction_source.text(),
        300,
        "the open case predicted with the chosen v1",
    )
    # the prediction label and the versions table name the same hash, and say which
    label = w.display_panel.prediction_source.text()
    shown = table.item(0, 4).text()
    assert shown.startswith("tensors sha256 ") and shown in label
    prov = json.loads((site / "pred_052.json").read_text())
    assert prov["model_sha256"].startswith(shown.split()[-1])


def test_an_implausible_prediction_is_flagged_and_accepting_it_asks(qtbot, window, site):
    w = window
    ct = load_ct(site / "ct_067.nii.gz")
    huge = np.zeros(ct.shape, np.uint8)
    huge[100:420, 100:420, 5:28] = 1  # about 430 mL: "brain", not blood
    save_mask(huge, ct, site / "pred_067.nii.gz")
    s = open_case(qtbot, w, site, "067")
    assert s.prediction_volume_ml() > 200
    assert w.view_warning.isVisible() and "implausible" in w.view_warning.text()
    assert "implausible" in w.display_panel.prediction_source.toolTip()
    before = np.asarray(s.model.data).copy()
    asked = []
    w.controller.ask = lambda title, text, buttons: asked.append(text) or "Cancel"
    w.actions.accept_all.trigger()
    assert asked and "implausible" in asked[0]
    assert np.array_equal(s.model.data, before)  # not accepted
    w.controller.ask = lambda title, text, buttons: "Accept it anyway"
    w.actions.accept_all.trigger()
    assert s.model.dirty and s.volume_ml() > 200
    w.controller.ask = lambda *a: "Discard"


def test_worklist_flags_an_implausible_model_volume(qtbot, window, site):
    w = window
    ct = load_ct(site / "ct_052.nii.gz")
    huge = np.zeros(ct.shape, np.uint8)
    huge[100:420, 100:420, 5:30] = 1
    (site / "mask_052.nii.gz").unlink()  # no manual mask: the worklist shows the model's volume
    save_mask(huge, ct, site / "pred_052.nii.gz")
    w.open_folder(site)
    _wait(qtbot, lambda: _row_text(w, "052", 2) != "…", 120, "volumes measured")
    assert _row_text(w, "052", 2).endswith("(model) ⚠ implausible")
    m = w.worklist_panel.model
    assert "larger than any hematoma" in m.data(m.index(m.row_of("052"), 2), 3)  # tooltip role


def test_status_control_follows_the_selected_row(qtbot, window, site):
    w = window
    StatusStore(site).set("052", CaseStatus.APPROVED, "dr_a")
    w.open_folder(site)
    panel = w.worklist_panel
    panel.select("052")
    assert panel.status_combo.currentData() is CaseStatus.APPROVED
    panel.select("067")
    assert panel.status_combo.currentData() is CaseStatus.NEW  # not the value left from 052
    panel.status_button.click()  # one click: 067 stays what it was
    assert scan_folder(site).find("067").status.status is CaseStatus.NEW


def test_one_state_everywhere_after_edit_save_and_a_bad_file(qtbot, window, site):
    w = window
    s = open_case(qtbot, w, site, "067")
    w.worklist_panel.select("067")
    s.model.set_slice_region(10, np.ones((8, 8), bool), 1, (100, 100))
    qtbot.wait(400)

    def views() -> dict:
        return {
            "worklist unsaved": _row_text(w, "067", 5) == "yes",
            "title unsaved": w.windowTitle().endswith("*"),
            "report unsaved": "unsaved edits: yes" in w.report_panel.state.text(),
            "status": (
                _row_text(w, "067", 1),
                w.worklist_panel.status_combo.currentText(),
                re.search(r"\[(.*)\]", w.windowTitle()).group(1),
            ),
        }

    v = views()
    assert v["worklist unsaved"] and v["title unsaved"] and v["report unsaved"], v
    assert "manual (unsaved edits)" in w.report_panel.live.text()
    with qtbot.waitSignal(w.controller.saved, timeout=60000):
        w.controller.save()
    qtbot.wait(400)
    v = views()
    assert not (v["worklist unsaved"] or v["title unsaved"] or v["report unsaved"]), v
    assert v["status"] == ("in progress",) * 3
    assert "manual (mask_067.nii.gz)" in w.report_panel.live.text()
    assert "unsaved" not in w.report_panel.live.text()

    (site / "ct_999.nii.gz").write_bytes(b"\x1f\x8bnot a CT")
    with qtbot.waitSignal(w.controller.failed, timeout=60000):
        w.controller.open_case(site / "ct_999.nii.gz", "999")
    assert w.controller.session is s and w.controller.label == "067"  # still in the case
    assert w.view.hu is not None and not views()["worklist unsaved"] and not views()["title unsaved"]
    assert w.worklist_panel.model.open_label == "067"


def test_case_report_from_the_window_files_reviewer_status_and_model(qtbot, window, site, tmp_path):
    w = window
    StatusStore(site).set("067", CaseStatus.REVIEWED, "dr_a")
    open_case(qtbot, w, site, "067")
    with qtbot.waitSignal(w.report_panel.written, timeout=180000):
        w.report_panel.export(tmp_path, whole=False)
    row = next(csv.DictReader(io.StringIO((tmp_path / "hematoma_volumes_067.csv").read_text())))
    assert (row["reviewer"], row["case_status"]) == ("dr_a", "reviewed")
    assert row["patient_name"] == "not available"  # a NIfTI case
    assert row["mask_source"] == "manual (mask_067.nii.gz)"


def test_site_dialog_defaults_to_the_open_folder_and_checks_it(qtbot, site, tmp_path):
    from app.site_dialog import SiteDialog

    dlg = SiteDialog(SiteSetup(), lambda *a: "Cancel", open_folder=str(site))
    qtbot.addWidget(dlg)
    assert dlg.data.text() == str(site)
    assert "2 case(s)" in dlg.data_check.text()
    dlg.data.setText(str(tmp_path / "missing"))
    dlg._accept()
    assert "folder not found" in dlg.result.text() and "folder not found" in dlg.data_check.text()
    assert QDialog.result(dlg) != SiteDialog.DialogCode.Accepted


def test_seg_export_from_a_dicom_case_and_why_not_for_nifti(qtbot, window, site, data_root, tmp_path):
    w = window
    s = open_case(qtbot, w, site, "067")
    assert w.reports.export_seg(tmp_path / "x.dcm") is None
    assert any("DICOM series" in t for t in _dialogs(w)) and not (tmp_path / "x.dcm").exists()
    for box in w.findChildren(QMessageBox, "errorDialog"):
        box.close()

    cases = tmp_path / "dicom-cases"
    cases.mkdir()
    folder = cases / "ge-tilt"
    folder.symlink_to(data_root / "headct" / "dicom-ge-tilt")  # the mask is saved beside the link
    w.controller.ask = lambda *a: "Discard"
    with qtbot.waitSignal(w.controller.opened, timeout=90000):
        w.controller.open_case(folder)
    s = w.controller.session
    for k in range(16, 22):
        s.model.set_slice_region(k, np.ones((40, 40), bool), 1, (250, 250))
    out = tmp_path / "seg.dcm"
    job = w.reports.export_seg(out)
    _wait(qtbot, lambda: not job.running, 180, "the SEG export")
    assert not _dialogs(w), _dialogs(w)
    assert "DICOM SEG written" in w.statusBar().currentMessage()
    frames = read_frames(series_files(folder))
    expected = mask_on_source_frames(s.report_job(False).mask, frames)
    assert expected.any()
    assert np.array_equal(read_seg_on_frames(out, [f.sop_instance_uid for f in frames]), expected)
    assert not any(p.name.startswith("seg") for p in folder.iterdir())  # nothing written into the series


def test_compare_manual_mask_with_the_prediction(qtbot, window, site):
    w = window
    open_case(qtbot, w, site, "067")
    w.controller.ask = lambda title, text, buttons: "The model's prediction"
    w.reports.compare_masks()
    _wait(qtbot, lambda: w.reports.last_agreement is not None, 180, "the comparison")
    r = w.reports.last_agreement
    ct = load_ct(site / "ct_067.nii.gz")
    want = compare_volumes(load_mask(site / "mask_067.nii.gz", ct), load_mask(site / "pred_067.nii.gz", ct))
    assert r.dice == pytest.approx(want.dice) and r.hd95_mm == pytest.approx(want.hd95_mm)
    assert r.volume_b_ml > r.volume_a_ml and r.slices
    assert any("HD95" in t for t in _dialogs(w, "agreementDialog"))


def test_a_background_update_does_not_undo_the_status_being_chosen(qtbot, window, site):
    w = window
    w.open_folder(site)
    panel = w.worklist_panel
    panel.select("052")
    panel.status_combo.setCurrentIndex(panel.status_combo.findData(CaseStatus.REVIEWED))
    panel.model.case_changed("052")  # e.g. its volume measured meanwhile
    assert panel.status_combo.currentData() is CaseStatus.REVIEWED
    w.controller.ask = lambda title, text, buttons: buttons[0]  # 052 not opened: confirmed
    panel.status_button.click()
    assert scan_folder(site).find("052").status.status is CaseStatus.REVIEWED
    panel.select("067")
    assert panel.status_combo.currentData() is CaseStatus.NEW
