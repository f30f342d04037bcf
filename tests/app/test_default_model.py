"""Before any ring turn, the shipped default model predicts the open case."""

from __future__ import annotations

import json

from core.model.default import read_card

from gui_helpers import open_case


def test_default_model_predicts_a_case_without_prediction_and_is_labelled(qtbot, window, site):
    w = window
    labels: list[str] = []
    w.predictions.labelChanged.connect(labels.append)
    with qtbot.waitSignal(w.predictions.updated, timeout=120000) as done:
        s = open_case(qtbot, w, site, "052")  # 052 has no prediction on disk
    session, label = done.args
    assert session is s and s.prediction is not None and s.prediction.any()
    assert "default model" in label and "shipped with the program" in label
    assert any("computing with the default model" in t for t in labels), labels
    doc = json.loads((site / "pred_052.json").read_text())
    assert doc["shipped_default"] is True and doc["model_sha256"] == read_card()["tensors_sha256"]
    assert (site / "pred_052.nii.gz").is_file()


def test_an_existing_prediction_is_not_replaced_by_the_default_model(qtbot, window, site):
    w = window
    before = (site / "pred_067.nii.gz").read_bytes()
    s = open_case(qtbot, w, site, "067")  # a prediction without provenance is on disk
    assert w.predictions.job is None
    assert s.prediction is not None
    assert (site / "pred_067.nii.gz").read_bytes() == before
