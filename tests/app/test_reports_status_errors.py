"""Reports from the GUI, case status, errors shown without breaking the app, screenshot."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
from PySide6.QtWidgets import QApplication, QMessageBox

from core.cases.worklist import STATUS_FILE, CaseStatus, scan_folder

from gui_helpers import open_case


def _rows(path: Path) -> list[dict]:
    return list(csv.DictReader(io.StringIO(path.read_text())))


def _error_dialogs(w) -> list[str]:
    return [b.text() for b in w.findChildren(QMessageBox, "errorDialog") if b.isVisible()]


def test_case_report_measures_unsaved_edits_and_says_so(qtbot, window, site, tmp_path):
    w = window
    s = open_case(qtbot, w, site)
    s.model.set_slice_region(3, np.ones((10, 10), bool), 1, (100, 100))
    out = tmp_path / "reports"
    out.mkdir()
    with qtbot.waitSignal(w.report_panel.written, timeout=60000) as got:
        job = w.report_panel.export(out, whole=False)
    assert job is not None and not job.running
    result = got.args[0]
    rows = _rows(out / "hematoma_volumes_067.csv")
    assert len(rows) == 1 and rows[0]["case"] == "067"
    assert rows[0]["mask_source"] == "manual (unsaved edits)"
    assert float(rows[0]["volume_ml"]) == round(s.volume_ml(), 3)
    pdf = out / "hematoma_report_067.pdf"
    assert result.pdf_paths == (pdf,) and pdf.read_bytes()[:5] == b"%PDF-"
    assert "manual (unsaved edits)" in w.report_panel.summary.text()


def test_worklist_report_with_prediction_and_left_out_cases(qtbot, window, site, tmp_path):
    w = window
    w.open_folder(site)
    w.report_panel.pred_radio.setChecked(True)
    with qtbot.waitSignal(w.report_panel.written, timeout=60000) as got:
        w.report_panel.export(tmp_path, whole=True)
    rows = _rows(tmp_path / "hematoma_volumes.csv")
    assert [r["case"] for r in rows] == ["067"]  # 052 has no prediction
    assert rows[0]["mask_source"] == "model prediction (pred_067.nii.gz, model version unknown)"
    assert "Left out (no such mask): 052" in w.report_panel.summary.text()
    # manual masks; the open case with unsaved edits is measured as on screen
    s = open_case(qtbot, w, site, "052")
    s.model.set_slice_region(3, np.ones((10, 10), bool), 1, (100, 100))
    w.report_panel.manual_radio.setChecked(True)
    with qtbot.waitSignal(w.report_panel.written, timeout=60000):
        w.report_panel.export(tmp_path, whole=True)
    rows = _rows(tmp_path / "hematoma_volumes.csv")
    assert [r["case"] for r in rows] == ["052", "067"]
    assert [r["mask_source"] for r in rows] == ["manual (unsaved edits)", "manual (mask_067.nii.gz)"]
    assert float(rows[0]["volume_ml"]) == round(s.volume_ml(), 3)
    assert got.args[0].csv_path == tmp_path / "hematoma_volumes.csv"


def test_status_changes_are_stored_beside_the_cases(qtbot, window, site):
    w = window
    w.open_folder(site)
    panel = w.worklist_panel
    panel.select("052")
    panel.status_combo.setCurrentIndex(panel.status_combo.findData(CaseStatus.APPROVED))
    asked = []
    w.controller.ask = lambda title, text, buttons: asked.append(text) or buttons[0]
    panel.status_button.click()  # 052 was never opened: asked first, naming it (issue 26)
    assert len(asked) == 1 and "052" in asked[0] and "not been opened" in asked[0]
    rec = scan_folder(site).find("052").status
    assert rec.status is CaseStatus.APPROVED and rec.user == "tester"
    assert (site / STATUS_FILE).exists()
    assert panel.model.data(panel.model.index(panel.model.row_of("052"), 1)) == "approved for training"
    # an open case with unsaved edits cannot be marked reviewed
    s = open_case(qtbot, w, site, "067")
    s.model.set_slice_region(0, np.ones((2, 2), bool), 1)
    w.set_status("067", CaseStatus.REVIEWED)
    assert any("unsaved edits" in t for t in _error_dialogs(w))
    assert scan_folder(site).find("067").status.status is CaseStatus.NEW


def test_corrupt_ct_shows_error_and_app_stays_usable(qtbot, window, site):
    w = window
    (site / "ct_999.nii.gz").write_bytes(b"\x1f\x8bthis is not a CT scan")
    w.open_folder(site)
    with qtbot.waitSignal(w.controller.failed, timeout=20000) as failed:
        w.open_label("999")
    text = failed.args[0]
    assert "ct_999.nii.gz" in text and "Traceback" not in text
    assert any("ct_999.nii.gz" in t for t in _error_dialogs(w))
    assert w.controller.session is None
    # the volume column says the case could not be measured, nothing crashed
    s = open_case(qtbot, w, site, "067")
    assert s.case_id == "067" and w.view.hu is not None


def test_missing_folder_and_damaged_status_file_are_reported(qtbot, window, site):
    w = window
    w.open_folder(site / "nope")
    assert any("folder not found" in t for t in _error_dialogs(w))
    (site / STATUS_FILE).write_text("{broken")
    w.open_folder(site)
    assert "damaged" in w.worklist_panel.folder_label.text()
    w.set_status("052", CaseStatus.REVIEWED)
    assert (site / STATUS_FILE).read_text() == "{broken"


def test_screenshot_of_a_case_with_both_overlays_is_not_blank(qtbot, window, site, tmp_path):
    w = window
    s = open_case(qtbot, w, site)
    assert w.view.manual_item.isVisible() and w.view.pred_item.isVisible()
    QApplication.processEvents()
    img = w.view.view.grab().toImage()
    assert img.width() > 200 and img.height() > 200
    path = tmp_path / "viewer.png"
    assert img.save(str(path))
    ptr = img.convertToFormat(img.Format.Format_RGB32).constBits()
    arr = np.frombuffer(ptr, np.uint8).reshape(img.height(), img.width(), 4)[..., :3]
    assert arr.std() > 20  # a CT is there, not a flat colour
    red = (arr[..., 2] > 200) & (arr[..., 1] < 140) & (arr[..., 0] < 120)  # BGRA: manual overlay
    cyan = (arr[..., 0] > 200) & (arr[..., 1] > 150) & (arr[..., 2] < 120)  # prediction outline
    assert red.sum() > 50 and cyan.sum() > 20
    assert s.volume_ml() > 0
