"""Issue 26, items 1 and 2: no silent model downgrade, and provenance that follows the voxels.

Item 1: the app's own ring starts from the shipped default model; the default model
stays in the versions table and can be chosen again; using a worse version names both
scores; a new model's prediction sits beside the case's, never over it, until chosen.

Item 2: a mask that started from a model's prediction records which model and how much
the reader changed; the report, CSV and DICOM SEG say "model X, corrected by Y" or "model
X, unreviewed", and the report of an unreviewed case says so on the page.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from core.annotation import Tool
from core.cases.worklist import CaseStatus
from core.evaluation.scoring import CaseScore
from core.io import load_ct, load_mask, save_mask
from core.site.setup import SiteSetup
from core.site.versions import LocalScore, ModelVersion, StoreIndex

from gui_helpers import open_case, wait_until

V1_SHA = "ab" * 32  # the tensors sha256 of the stand-in v1


def _score(dice: float, n: int = 3) -> LocalScore:
    cases = tuple(CaseScore(f"c{i}", dice, 10.0, 10.0) for i in range(n))
    return LocalScore(n, dice, 1.0, cases, "now")


def _local_ring(qtbot, w, site: Path, tmp_path: Path) -> dict:
    w.apply_site(SiteSetup(site="solo", data_folder=str(site), poll_s=2.0))
    wait_until(qtbot, lambda: w.ring_dock.ring.store is not None, 30000)
    manifest = tmp_path / "state" / "hemarelay" / "local-ring" / "solo" / "manifest.json"
    return json.loads(manifest.read_text())


def _add_weaker_v1(w) -> None:
    """A kept ring version v1 (weights: a copy of the shipped file; only its record matters
    here) scored below the shipped default model on this site's cases."""
    from core.model.default import default_model_path

    store = w.ring_dock.ring.store
    name = "v000001-solo-aaaaaaaaaaaa.safetensors"
    store.folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(default_model_path(), store.folder / name)
    v1 = ModelVersion(
        1, "solo", 0, 0, "a" * 64, "2026-12-01T10:00:00+00:00", name,
        "unet25d-click-ds4-0.8mm-clicks5mm", store.ring_id,
        score=_score(0.44), tensors_sha256=V1_SHA,
    )  # fmt: skip
    store._write(StoreIndex(store.ring_id, [v1], None, _score(0.66)))
    w.ring_dock.models.show_versions(w.ring_dock.ring.versions(), w.ring_dock.ring.chosen())


def _v1_prediction_beside(site: Path) -> np.ndarray:
    """What v1 predicted for case 067, kept beside its prediction (as v1 writes it)."""
    ct = load_ct(site / "ct_067.nii.gz")
    m = load_mask(site / "mask_067.nii.gz", ct).data.copy()
    m[:, :, : m.shape[2] // 2] = 0  # different from the stand-in: only the upper half
    m[50:80, 50:80, 10] = 1
    path = site / f"pred_067.m-{V1_SHA[:12]}.nii.gz"
    save_mask(m, ct, path)
    doc = {"model_version": "v1 from site solo, round 1", "model_sha256": V1_SHA, "architecture": "unet25d"}
    path.with_name(f"pred_067.m-{V1_SHA[:12]}.json").write_text(json.dumps(doc))
    return m


def test_no_silent_model_downgrade(qtbot, window, site, tmp_path):
    w = window
    manifest = _local_ring(qtbot, w, site, tmp_path)
    assert manifest["config"]["start_from"] == "default"  # the app's own ring improves on the shipped model
    table = w.ring_dock.models.table
    wait_until(qtbot, lambda: table.rowCount() == 1)
    assert table.item(0, 0).text() == "default" and "in use" in table.item(0, 8).text()
    assert w.ring_dock.ring.chosen().shipped

    _add_weaker_v1(w)
    assert [table.item(r, 0).text() for r in range(table.rowCount())] == ["v1", "default"]
    asked = []
    w.controller.ask = lambda title, text, buttons: asked.append(text) or "Use v1 anyway"
    w.ring_dock.models.select(1)
    w.ring_dock.models.use_button.click()
    assert len(asked) == 1, asked
    text = asked[0]  # both scores, and the shipped model named as the one in use
    assert "Dice 0.440" in text and "Dice 0.660" in text and "The model in use, the default model" in text
    assert "lower than the model in use (default: 0.660)" in text
    assert w.ring_dock.ring.chosen().version == 1

    stand_in = (site / "pred_067.nii.gz").read_bytes()
    v1_mask = _v1_prediction_beside(site)
    s = open_case(qtbot, w, site, "067")
    box = w.display_panel.candidate
    wait_until(qtbot, lambda: box.isVisible(), 30000)
    assert "v1 from site solo" in box.text.text() and "This case's prediction" in box.text.text()
    assert (site / "pred_067.nii.gz").read_bytes() == stand_in  # never overwritten
    case_pred = s.prediction.copy()
    box.show_button.click()  # the new one, shown instead while pressed
    assert w.view.prediction is not None and not np.array_equal(w.view.prediction, case_pred)
    box.show_button.click()
    assert np.array_equal(w.view.prediction, case_pred)

    box.use_button.click()  # chosen for this case: the stand-in is kept beside
    assert not box.isVisible()
    assert np.array_equal(load_mask(site / "pred_067.nii.gz", load_ct(site / "ct_067.nii.gz")).data, v1_mask)
    kept = list(site.glob("pred_067.m-unknown-*.nii.gz"))
    assert len(kept) == 1 and kept[0].read_bytes() == stand_in
    assert "v1 from site solo" in w.display_panel.prediction_source.text()

    # the shipped model is chosen again from the table: better than v1, so no question
    asked.clear()
    w.ring_dock.models.select(0)  # core.site.versions.SHIPPED: the shipped model is version 0
    w.ring_dock.models.use_button.click()
    assert asked == [] and w.ring_dock.ring.chosen().shipped
    assert "in use" in table.item(1, 8).text() and table.item(1, 0).text() == "default"


# ------------------------------------------------------------------ item 2: provenance follows the voxels
def _csv_row(folder: Path, case: str) -> dict:
    import csv
    import io

    return next(csv.DictReader(io.StringIO((folder / f"hematoma_volumes_{case}.csv").read_text())))


def _pdf_text(path: Path) -> str:
    import shutil as sh
    import subprocess

    if not sh.which("pdftotext"):  # poppler-utils; the report's fields are checked in the CSV too
        return ""
    return subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout


def _report(qtbot, w, folder: Path) -> dict:
    with qtbot.waitSignal(w.report_panel.written, timeout=180000):
        w.report_panel.export(folder, whole=False)
    return _csv_row(folder, "067")


def _by_the_default_model(site: Path) -> str:
    """Provenance for the stand-in prediction: as if the shipped default model had made it."""
    from core.model.default import read_card

    card = read_card()
    doc = {"model_version": card["version"], "model_sha256": card["tensors_sha256"], "shipped_default": True}
    (site / "pred_067.json").write_text(json.dumps(doc))
    return card["version"]


def test_provenance_follows_the_voxels(qtbot, window, site, tmp_path):
    from gui_helpers import drag

    w = window
    version = _by_the_default_model(site)
    (site / "mask_067.nii.gz").unlink()  # a case nobody has drawn: the reader starts from the model
    s = open_case(qtbot, w, site, "067")
    w.actions.accept_all.trigger()
    with qtbot.waitSignal(w.controller.saved, timeout=20000):
        w.actions.save.trigger()
    assert (site / "mask_067.json").is_file()  # the origin is kept beside the mask
    row = _report(qtbot, w, tmp_path / "r1")
    assert row["mask_source"].startswith(f"model {version}") and row["mask_source"].endswith("unreviewed")
    assert row["mask_model"].startswith(version) and row["voxels_added"] == row["voxels_removed"] == "0"
    assert float(row["dice_vs_accepted_prediction"]) == 1.0 and row["case_status"] == "in progress"
    text = _pdf_text(tmp_path / "r1" / "hematoma_report_067.pdf")
    assert not text or "NOT REVIEWED" in text  # said on the page

    # the reader corrects it: a brush stroke away from the prediction, then saves and reviews
    w.actions.tools[Tool.BRUSH].trigger()
    k = int(np.argmax(np.count_nonzero(s.prediction, axis=(1, 2))))
    w.view.set_slice(k)
    drag(w, [(60.0, 60.0), (60.0, 90.0)])
    with qtbot.waitSignal(w.controller.saved, timeout=20000):
        w.actions.save.trigger()
    w.set_status("067", CaseStatus.REVIEWED)
    row = _report(qtbot, w, tmp_path / "r2")
    assert row["mask_source"].startswith(f"model {version}") and "corrected by tester" in row["mask_source"]
    assert int(row["voxels_added"]) > 0 and row["voxels_removed"] == "0"
    assert 0.0 < float(row["dice_vs_accepted_prediction"]) < 1.0
    text = _pdf_text(tmp_path / "r2" / "hematoma_report_067.pdf")
    assert not text or ("corrected by tester" in text and "NOT REVIEWED" not in text)

    # it follows the voxels: reopened later, the saved mask still says where it came from
    w.controller.close_case()
    open_case(qtbot, w, site, "052")
    open_case(qtbot, w, site, "067")
    assert _report(qtbot, w, tmp_path / "r3")["mask_source"] == row["mask_source"]


def test_the_seg_of_model_output_is_marked_automatic_then_semiautomatic(qtbot, window, data_root, tmp_path):
    import pydicom

    from core.cases.case_files import case_files
    from core.model.default import read_card

    w = window
    series = tmp_path / "cd" / "ge-tilt"
    shutil.copytree(data_root / "headct" / "dicom-ge-tilt", series)
    paths = case_files(series)
    ct = load_ct(series)
    pred = np.zeros(ct.shape, np.uint8)
    pred[200:260, 200:260, 10:16] = 1  # a stand-in prediction of the shipped model
    paths.prediction.parent.mkdir(parents=True, exist_ok=True)
    save_mask(pred, ct, paths.prediction)
    card = read_card()
    doc = {"model_version": card["version"], "model_sha256": card["tensors_sha256"], "shipped_default": True}
    paths.provenance.write_text(json.dumps(doc))
    with qtbot.waitSignal(w.controller.opened, timeout=90000):
        w.controller.open_case(series)
    s = w.controller.session
    w.actions.accept_all.trigger()
    kinds = []
    for step in ("accepted", "corrected"):
        if step == "corrected":
            s.model.set_slice_region(int(np.argmax(s.prediction.sum(axis=(1, 2)))), np.ones((6, 6), bool), 1, (5, 5))
        out = tmp_path / f"seg_{step}.dcm"
        job = w.reports.export_seg(out)
        wait_until(qtbot, lambda j=job: not j.running, 180000)
        seg = pydicom.dcmread(str(out))
        segment = seg.SegmentSequence[0]
        kinds.append(segment.SegmentAlgorithmType)
        assert card["version"] in segment.SegmentAlgorithmName
        assert seg.ContentDescription.startswith(f"model {card['version']}")
    assert kinds == ["AUTOMATIC", "SEMIAUTOMATIC"]
    w.controller.ask = lambda *a: "Discard"
