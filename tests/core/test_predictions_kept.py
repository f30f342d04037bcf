"""A prediction is never overwritten: another model's is kept beside it, and choosing it keeps
the one it replaces (core.cases.case_files.CaseFiles.kept_prediction, core.cases.provenance)."""

from __future__ import annotations

import json

import pytest

from core.cases.case_files import case_files
from core.cases.provenance import keep_current_prediction, made_by, use_kept_prediction, weights_tensors_sha256


def test_choosing_a_kept_prediction_keeps_the_one_it_replaces(tmp_path):
    paths = case_files(tmp_path / "ct_051.nii.gz")
    assert paths.kept_prediction("abc123").name == "pred_051.m-abc123.nii.gz"
    with pytest.raises(ValueError):
        paths.kept_prediction("../x")
    assert keep_current_prediction(paths) is None  # nothing to keep yet
    paths.prediction.write_bytes(b"old prediction")  # no provenance: an unknown model
    old_tag = made_by(paths.prediction)
    assert old_tag.startswith("unknown-")
    new = paths.kept_prediction("f" * 12)
    new.write_bytes(b"new prediction")
    new.with_name("pred_051.m-ffffffffffff.json").write_text(json.dumps({"model_sha256": "f" * 64}))
    use_kept_prediction(paths, new)
    assert paths.prediction.read_bytes() == b"new prediction" and made_by(paths.prediction) == "f" * 12
    assert paths.kept_prediction(old_tag).read_bytes() == b"old prediction"  # kept, not lost
    assert not paths.kept_prediction(old_tag).with_name(f"pred_051.m-{old_tag}.json").exists()


def test_the_tensors_hash_is_read_from_the_header_without_torch():
    from core.model.default import default_model_path, read_card

    assert weights_tensors_sha256(default_model_path()) == read_card()["tensors_sha256"]
