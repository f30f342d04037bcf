"""The default model shipped with the program: integrity, use without --model,
and a ring that starts from it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from core.cases.datasets import Case
from core.cli import main
from core.errors import InputError
from core.evaluation.metrics import dice
from core.io import load_ct, load_mask
from core.model import default as default_model
from core.model.default import file_sha256, load_default_model, read_card
from core.progress import NEVER_CANCELLED, run_to_end
from core.ring.manifest import RingConfig, new_manifest, parse_manifest
from core.ring.trainer import TurnInput
from core.training.config import load_config
from core.training.ring_turn import HematomaTurnTrainer

SMOKE_CASE = ("site-b", "test", "081")  # chosen for the smoke check only, never for a setting


def test_shipped_model_matches_its_card_and_names_its_data():
    card = read_card()
    path = default_model.default_model_path()
    assert file_sha256(path) == card["file_sha256"]
    loaded = load_default_model()
    assert loaded.meta.sha256 == card["tensors_sha256"] and loaded.meta.version == card["version"]
    assert loaded.meta.architecture == "unet25d-click" and loaded.meta.input.in_plane_mm > 0
    assert loaded.meta.input.click_sigma_mm > 0  # the same weights take a reviewer's clicks
    assert loaded.meta.training["shipped_default"] is True
    assert "PhysioNet CT-ICH v1.2.0" in loaded.meta.training["data_source"]
    assert "CC BY 4.0" in loaded.meta.training["data_source"]


def test_shipped_model_and_card_carry_no_case_ids(data_root: Path):
    ids = {p.name.split("_")[1].split(".")[0] for p in (data_root / "ctich").rglob("ct_*.nii.gz")}
    header = default_model.default_model_path().read_bytes()[:200000].decode("latin-1")
    card = default_model.default_card_path().read_text()
    for text in (header, card):
        for cid in ids:
            assert f"ct_{cid}" not in text and f"/{cid}" not in text and f'"{cid}"' not in text
        assert str(data_root) not in text


def test_a_changed_default_model_is_refused(tmp_path: Path, monkeypatch):
    bad = tmp_path / "default.safetensors"
    shutil.copy(default_model.default_model_path(), bad)
    data = bytearray(bad.read_bytes())
    data[-100] ^= 0xFF
    bad.write_bytes(bytes(data))
    monkeypatch.setattr(default_model, "default_model_path", lambda: bad)
    with pytest.raises(InputError, match="does not match the sha256"):
        load_default_model()


@pytest.mark.slow
def test_predict_without_model_uses_the_default_model(data_root: Path, tmp_path: Path, capsys):
    site, split, case = SMOKE_CASE
    ct_path = data_root / "ctich" / site / split / f"ct_{case}.nii.gz"
    assert main(["predict", str(ct_path), "-o", str(tmp_path)]) == 0
    assert "default model" in capsys.readouterr().err
    doc = json.loads((tmp_path / f"pred_{case}.json").read_text())
    assert doc["shipped_default"] is True and doc["model_sha256"] == read_card()["tensors_sha256"]
    ct = load_ct(ct_path)
    pred = load_mask(tmp_path / f"pred_{case}.nii.gz", ct).data
    manual = load_mask(ct_path.with_name(f"mask_{case}.nii.gz"), ct).data
    assert dice(manual, pred) > 0.5


def test_ring_config_keeps_where_it_starts_from():
    m = new_manifest(RingConfig(sites=("a", "b"), start_from="default"))
    back = parse_manifest(m.to_bytes(), "test")
    assert back.config.start_from == "default"
    old = json.loads(m.to_bytes())
    del old["config"]["start_from"]  # a ring made before the option: from scratch
    assert parse_manifest(json.dumps(old).encode(), "test").config.start_from == "scratch"
    with pytest.raises(Exception, match="Start from"):
        RingConfig(sites=("a",), start_from="imagenet").validate()


@pytest.mark.slow
def test_a_ring_started_from_the_default_model_trains_from_its_weights(site_a: Path):
    cases = [Case("071", site_a / "train" / "ct_071.nii.gz", site_a / "train" / "mask_071.nii.gz")]
    config = load_config(
        "default",
        None,
        [
            "patches_per_volume=2",
            "normal_patches_per_volume=0",
            "patch_size=32",
            "learning_rate=1e-12",
            "val_split=patch",
            "threads=1",
            "augment=false",
        ],
    )
    trainer = HematomaTurnTrainer(site_a, config, cases=cases)
    shipped = load_default_model().state_dict
    inp = TurnInput(None, None, 1, seed=0, turn=0, site="a", start_from="default")
    result = run_to_end(trainer.train_turn(inp, NEVER_CANCELLED))
    diffs = [float((result.weights[k] - shipped[k]).abs().max()) for k in shipped]
    assert max(diffs) < 1e-6  # one step at lr 1e-12: still the shipped weights
    scratch = run_to_end(trainer.train_turn(TurnInput(None, None, 1, 0, 0, "a"), NEVER_CANCELLED))
    assert max(float((scratch.weights[k] - shipped[k]).abs().max()) for k in shipped) > 1e-3
    other = HematomaTurnTrainer(site_a, load_config("cpu-small"), cases=cases)
    with pytest.raises(InputError, match="--preset default"):
        run_to_end(other.train_turn(inp, NEVER_CANCELLED))
