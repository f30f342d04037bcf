"""Whole-volume prediction, the train/predict/evaluate commands, on a synthetic head
(and one real CT-ICH case when the shared data is present)."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
import torch

from core.cases.case_files import case_files
from core.cli import main
from core.errors import CancelledError, InputError
from core.evaluation.inference import Segmenter, plan_slices, predict_files
from core.evaluation.metrics import remove_small_components
from core.imaging.brain import brain_mask
from core.imaging.orientation import to_canonical
from core.imaging.volume import Volume
from core.io import load_ct, save_volume
from core.model.architectures import build_network
from core.model.weights import WeightsMeta, load_weights, save_weights
from core.progress import CancelToken, Progress, run_collecting, run_to_end

# LPS-like storage (first two axes flipped, as DICOM-derived NIfTIs often are): the
# pipeline must reorient to RAS for the network and map the mask back exactly.
FLIPPED = np.array([[-3.0, 0, 0, 90], [0, -3.0, 0, 100], [0, 0, 5.0, -20], [0, 0, 0, 1]])


def synthetic_head(seed: int = 0, affine: np.ndarray = FLIPPED, shape=(64, 60, 8)):
    """Air, a 2-voxel skull of 1000 HU, brain ~30 HU with noise, a 70 HU hematoma."""
    rng = np.random.default_rng(seed)
    i, j = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
    r = np.hypot((i - shape[0] / 2) / 26.0, (j - shape[1] / 2) / 23.0)
    ct = np.full(shape, -1000, np.int16)
    mask = np.zeros(shape, np.uint8)
    for k in range(shape[2]):
        ct[..., k][r < 1.08] = 1000
        ct[..., k][r < 1.0] = (30 + rng.normal(0, 4, size=(r < 1.0).sum())).astype(np.int16)
    ci, cj = 20 + 4 * seed, 25
    blob = (i - ci) ** 2 + (j - cj) ** 2 < 25
    for k in (3, 4, 5):
        ct[..., k][blob] = 70
        mask[..., k][blob] = 1
    return Volume(ct, affine), Volume(mask, affine)


def _weights(tmp_path, seed=0, name="w.safetensors"):
    torch.manual_seed(seed)
    net = build_network("inception", 4)
    with torch.no_grad():  # a bias that makes some voxels positive
        net.out.bias.fill_(0.3)
    path = tmp_path / name
    save_weights(path, net.state_dict(), WeightsMeta("inception", 4, preset="test"))
    return path, net.eval()


def test_cropped_prediction_equals_whole_slice_reference(tmp_path):
    path, net = _weights(tmp_path)
    ct, _ = synthetic_head()
    seg = Segmenter.from_file(path)
    canon, _ = to_canonical(ct)
    brain = brain_mask(canon)
    image = seg.convention.prepare(canon.data, brain)
    prob, plans = run_to_end(seg.probabilities_canonical(image, brain))
    # the crops skip pixels (margins of 16 px around the brain) ...
    assert sum(p.pixels for p in plans) < image.shape[0] * image.shape[1] * len(plans) or all(p.i0 == 0 for p in plans)
    # ... yet inside the brain equal the reference network run on whole slices
    with torch.inference_mode():
        full = net(torch.from_numpy(np.moveaxis(image, 2, 0)[:, None])).numpy()[:, 0]
    full = np.moveaxis(full, 0, 2) * brain
    assert np.abs(prob - full).max() < 1e-5
    assert (prob[~brain] == 0).all()


def test_plan_slices_margin_and_skips():
    brain = np.zeros((100, 90, 4), bool)
    brain[40:50, 30:35, 1] = True
    brain[0:5, 80:90, 2] = True
    plans = plan_slices(brain, margin=16)
    assert [p.k for p in plans] == [1, 2]
    assert (plans[0].i0, plans[0].i1, plans[0].j0, plans[0].j1) == (24, 66, 14, 51)
    assert (plans[1].i0, plans[1].i1, plans[1].j0, plans[1].j1) == (0, 21, 64, 90)
    whole = plan_slices(brain, margin=None)
    assert [(p.k, p.pixels) for p in whole] == [(1, 9000), (2, 9000)]


def test_unet_weights_predict_on_whole_slices(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "unet.safetensors"
    save_weights(path, build_network("unet", 16).state_dict(), WeightsMeta("unet", 16))
    ct, _ = synthetic_head()
    pred = run_to_end(Segmenter.from_file(path, threads=1).predict(ct))
    assert pred.mask.shape == ct.shape
    assert pred.pixels_run == ct.shape[0] * ct.shape[1] * pred.slices_run


def test_predict_maps_back_to_source_grid(tmp_path):
    path, _ = _weights(tmp_path)
    ct, _ = synthetic_head()
    seg = Segmenter.from_file(path, backend="torch", threads=1)
    events, pred = run_collecting(seg.predict(ct, keep_probabilities=True))
    assert all(isinstance(e, Progress) for e in events)
    assert {"Brain extraction", "Segmenting"} <= {e.stage for e in events}
    assert pred.mask.shape == ct.shape and pred.mask.dtype == np.uint8
    # recompute on the canonical grid and map back by hand
    canon, reo = to_canonical(ct)
    brain = brain_mask(canon)
    prob, _ = run_to_end(seg.probabilities_canonical(seg.convention.prepare(canon.data, brain), brain))
    expected = reo.to_source(remove_small_components(prob > 0.5, 27).astype(np.uint8))
    assert np.array_equal(pred.mask, expected)
    assert np.allclose(pred.probabilities, reo.to_source(prob))
    assert pred.volume_ml == pytest.approx(expected.sum() * ct.voxel_volume_ml)
    assert pred.slices_run == ct.shape[2]


def test_cancel_writes_nothing(tmp_path):
    path, _ = _weights(tmp_path)
    ct, _ = synthetic_head()
    ct_path = save_volume(ct, tmp_path / "ct_007.nii.gz")
    token = CancelToken()
    gen = predict_files([ct_path], Segmenter.from_file(path), tmp_path / "out", token=token)
    next(gen)
    token.cancel()
    with pytest.raises(CancelledError):
        run_to_end(gen)
    assert not (tmp_path / "out" / "pred_007.nii.gz").exists()


def test_output_names(tmp_path):
    f = case_files(tmp_path / "ct_049.nii.gz")
    assert (f.prediction, f.probabilities) == (tmp_path / "pred_049.nii.gz", tmp_path / "prob_049.nii.gz")
    assert case_files(tmp_path / "scan.nii", tmp_path / "o").prediction == tmp_path / "o" / "pred_scan.nii.gz"
    assert case_files(tmp_path / "series3").prediction == tmp_path / "pred_series3.nii.gz"
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    path, _ = _weights(tmp_path)
    with pytest.raises(InputError, match="distinct names"):
        run_to_end(predict_files([a / "ct_1.nii.gz", b / "ct_1.nii.gz"], Segmenter.from_file(path), tmp_path / "o"))


def _site(tmp_path):
    site = tmp_path / "site"
    ids = {"train": ["alpha", "bravo"], "test": ["charlie", "delta"], "normal": ["echo"]}
    for split, names in ids.items():
        (site / split).mkdir(parents=True)
        for n, name in enumerate(names):
            ct, mask = synthetic_head(seed=n if split != "normal" else 0)
            if split == "normal":
                mask = mask.with_data(np.zeros_like(mask.data))
                ct = ct.with_data(np.where(ct.data == 70, 30, ct.data).astype(np.int16))
            save_volume(ct, site / split / f"ct_{name}.nii.gz")
            save_volume(mask, site / split / f"mask_{name}.nii.gz")
    return site


def test_train_predict_evaluate_commands(tmp_path, capsys):
    site = _site(tmp_path)
    out = tmp_path / "model"
    small = ["--set", "patch_size=16", "--set", "patches_per_volume=6", "--set", "threads=1", "--set", "batch_size=4"]
    assert main(["train", "--data", str(site), "--out", str(out), "--set", "max_epochs=1", *small]) == 0
    w = load_weights(out / "model.safetensors")
    assert w.meta.training["epochs"] == 1 and w.meta.preset == "default"
    assert w.meta.training["data"]["n_volumes"] == 2 and w.meta.training["data"]["n_train_patches"] > 0
    header = (out / "model.safetensors").read_bytes()[:20000].decode("latin-1")
    for name in ("alpha", "bravo", str(site)):
        assert name not in header  # no case names or paths leave the site in a weights file
    # a second run with more epochs resumes from the checkpoint
    assert main(["train", "--data", str(site), "--out", str(out), "--set", "max_epochs=2", *small]) == 0
    w2 = load_weights(out / "model.safetensors")
    assert w2.meta.training["epochs"] == 2
    assert [h["val_loss"] for h in w2.meta.training["history"][:1]] == [
        h["val_loss"] for h in w.meta.training["history"]
    ]
    # other settings refuse to resume
    assert main(["train", "--data", str(site), "--out", str(out), "--set", "seed=9", *small]) == 2
    assert "other settings" in capsys.readouterr().err

    pred_dir = tmp_path / "pred"
    ct_path = site / "test" / "ct_charlie.nii.gz"
    assert (
        main(
            ["predict", str(ct_path), "-o", str(pred_dir), "--model", str(out / "model.safetensors"), "--probabilities"]
        )
        == 0
    )
    mask_img = nib.load(pred_dir / "pred_charlie.nii.gz")
    ct_img = nib.load(ct_path)
    assert mask_img.shape == ct_img.shape and np.allclose(mask_img.affine, ct_img.affine)
    assert mask_img.get_data_dtype() == np.uint8
    prob = nib.load(pred_dir / "prob_charlie.nii.gz").get_fdata()
    assert prob.min() >= 0 and prob.max() <= 1
    assert "pred_charlie.nii.gz" in capsys.readouterr().out
    # which model made the mask is recorded beside it, and reports name it
    from core.cases.provenance import prediction_label
    from core.model.weights import read_meta

    meta = read_meta(out / "model.safetensors")
    label = prediction_label(pred_dir / "pred_charlie.nii.gz")
    assert meta.sha256[:12] in label and meta.version in label

    report = tmp_path / "eval.json"
    assert (
        main(["evaluate", "--model", str(out / "model.safetensors"), "--data", str(site), "--json", str(report)]) == 0
    )
    data = json.loads(report.read_text())
    assert [c["case"] for c in data["cases"]] == ["charlie", "delta"]
    assert set(data["cases"][0]) == {"case", "dice", "manual_ml", "auto_ml"}
    disc = int((np.add.outer(np.arange(-5, 6) ** 2, np.arange(-5, 6) ** 2) < 25).sum())  # 69 px
    assert data["cases"][0]["manual_ml"] == pytest.approx(3 * disc * 3 * 3 * 5 / 1000)  # x 3 slices
    assert [c["case"] for c in data["normal"]] == ["echo"] and set(data["normal"][0]) == {"case", "auto_ml"}
    assert "mean_dice" in data and "pearson_r" in data
    table = capsys.readouterr().out
    assert "charlie" in table and "mean Dice" in table


def test_bad_model_file_is_a_clear_error(tmp_path, capsys):
    ct, _ = synthetic_head()
    ct_path = save_volume(ct, tmp_path / "ct_1.nii.gz")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not weights")
    assert main(["predict", str(ct_path), "--model", str(bad)]) == 2
    assert "bad.safetensors" in capsys.readouterr().err


@pytest.mark.slow
def test_real_case_prediction_geometry(site_a, tmp_path):
    path, _ = _weights(tmp_path)
    ct_path = sorted((site_a / "test").glob("ct_*.nii.gz"))[0]
    done = run_to_end(predict_files([ct_path], Segmenter.from_file(path), tmp_path))
    pred = done[0].prediction
    ct = load_ct(ct_path)
    img = nib.load(done[0].mask_path)
    assert img.shape == ct.shape and np.allclose(img.affine, ct.affine)
    # only brain voxels can be hematoma, and the crops skipped most of each slice
    assert not (pred.mask.astype(bool) & ~brain_mask(ct)).any()
    assert pred.pixels_run < 0.6 * ct.shape[0] * ct.shape[1] * ct.shape[2]


def test_training_a_site_twice_gives_identical_weights(tmp_path):
    from core.training.config import load_config
    from core.training.run import train_site

    site = _site(tmp_path)
    config = load_config(
        "cpu-small", None, ["patch_size=16", "patches_per_volume=5", "threads=1", "max_epochs=1", "seed=3"]
    )
    first = run_to_end(train_site(site, tmp_path / "one", config))
    second = run_to_end(train_site(site, tmp_path / "two", config))
    assert first.meta.sha256 == second.meta.sha256
    other = run_to_end(train_site(site, tmp_path / "three", config.replace(seed=4)))
    assert other.meta.sha256 != first.meta.sha256
