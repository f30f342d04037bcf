"""Issue 26, items 1 and 2: no silent model downgrade, and provenance that follows the voxels.

Item 1: the app's own ring starts from the shipped default model; the default model
stays in the versions table and can be chosen again; using a worse version names both
scores; a new model's prediction sits beside the case's, never over it, until chosen.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from core.io import load_ct, load_mask, save_mask
from core.scoring import CaseScore
from core.site.setup import SiteSetup
from core.site.versions import SHIPPED, LocalScore, ModelVersion, StoreIndex
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
        1, "solo", 0, 0, "a" * 64, "2026-12-01T10:00:00+00:00", name, "unet25d-ds4-0.8mm", store.ring_id,
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
    w.ring_dock.models.select(SHIPPED)
    w.ring_dock.models.use_button.click()
    assert asked == [] and w.ring_dock.ring.chosen().shipped
    assert "in use" in table.item(1, 8).text() and table.item(1, 0).text() == "default"
