"""The product recipe's parts (preset ``default``): working grid, 2.5-D input,
the scaled U-Net, Dice + cross-entropy, augmentation, denormal flushing, and a
pooled two-site training run on real cases that predicts through the product path."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from core.errors import ConfigError, InputError
from core.evaluation.inference import Segmenter
from core.io import load_ct
from core.model.input import DEFAULT_INPUT, InputConvention
from core.model.unet25d import UNet25D
from core.model.weights import LoadedWeights, WeightsMeta, load_weights, save_weights
from core.progress import run_to_end
from core.training.config import load_config
from core.training.loss import binary_cross_entropy, dice_bce, soft_dice
from core.training.patches import extract_patches
from core.training.run import train_site, training_cases
from core.training.trainer import augment_batch

WORKING = InputConvention(in_plane_mm=0.8, context_slices=1)


def test_working_grid_shape_and_round_trip():
    shape, spacing = (512, 500, 3), (0.4, 0.42, 5.0)
    assert WORKING.working_shape(shape, spacing) == (256, 262, 3)
    assert DEFAULT_INPUT.working_shape(shape, spacing) == shape
    yy, xx = np.mgrid[0:512, 0:500].astype(np.float32)
    smooth = np.repeat((np.sin(yy / 40) + np.cos(xx / 55))[:, :, None], 3, axis=2)
    work = WORKING.to_working(smooth, spacing)
    assert work.shape == (256, 262, 3)
    back = WORKING.from_working(work, shape)
    assert back.shape == shape
    # a smooth field survives the trip (no half-voxel shift): error far below its range of 4
    assert np.abs(back - smooth)[8:-8, 8:-8].max() < 0.02


def test_stack_gives_neighbours_and_repeats_at_the_ends():
    vol = np.zeros((4, 5, 3), np.float32)
    for k in range(3):
        vol[:, :, k] = k + 1
    x = WORKING.stack(vol, [0, 1, 2])
    assert x.shape == (3, 3, 4, 5)
    assert [x[0, c, 0, 0] for c in range(3)] == [1, 1, 2]  # slice 0: itself as the missing neighbour
    assert [x[1, c, 0, 0] for c in range(3)] == [1, 2, 3]
    assert [x[2, c, 0, 0] for c in range(3)] == [2, 3, 3]


def test_old_weights_files_read_as_native_grid_single_slice():
    old = {
        "units": "HU",
        "clip_low_hu": -20,
        "clip_high_hu": 100,
        "background_hu": -20,
        "skull_stripped": True,
        "plane": "axial",
    }
    conv = InputConvention.from_dict(old)
    assert conv == DEFAULT_INPUT and conv.channels == 1
    assert InputConvention.from_dict(WORKING.to_dict()) == WORKING


def test_network_and_convention_must_agree(tmp_path: Path):
    with pytest.raises(ConfigError, match="context_slices"):
        load_config("default", None, ["context_slices=0"])
    with pytest.raises(ConfigError, match="context_slices"):
        load_config("cpu-small", None, ["context_slices=1"])
    net = UNet25D(4)
    path = tmp_path / "w.safetensors"
    save_weights(path, net.state_dict(), WeightsMeta("unet25d", 4, input=WORKING))
    assert load_weights(path).meta.input == WORKING
    bad = tmp_path / "bad.safetensors"
    save_weights(bad, net.state_dict(), WeightsMeta("unet25d", 4, input=DEFAULT_INPUT))
    with pytest.raises(InputError, match="takes 3"):
        load_weights(bad)


def test_unet25d_shapes_scaling_and_weights_only_state():
    torch.manual_seed(0)
    net = UNet25D(4).eval()
    for h, w in ((37, 50), (64, 64)):
        with torch.no_grad():
            out = net(torch.full((2, 3, h, w), 30.0))
        assert out.shape == (2, 1, h, w)
        assert float(out.min()) >= 0 and float(out.max()) <= 1
    # the output bias starts at "no blood" (p about 0.01), not at 0.5 everywhere
    assert abs(float(torch.sigmoid(net.out.bias.detach())) - 0.01) < 1e-3
    # group normalisation: no running statistics of a site's data travel with the weights
    params = {k for k, _ in net.named_parameters()}
    assert set(net.state_dict()) == params
    # HU are scaled inside: raw HU in [-20, 100] reach the first convolution as [-1.5, 1.5]
    seen = {}
    net.down[0].conv1.register_forward_hook(lambda m, i, o: seen.update(x=i[0]))
    net(torch.tensor([-20.0, 100.0]).repeat(1, 3, 16, 8).reshape(1, 3, 16, 16))
    assert float(seen["x"].min()) == pytest.approx(-1.5) and float(seen["x"].max()) == pytest.approx(1.5)


def test_patches_carry_the_neighbouring_slices():
    image = np.zeros((20, 20, 4), np.int16)
    for k in range(4):
        image[:, :, k] = 10 * (k + 1)
    mask = np.zeros(image.shape, np.uint8)
    mask[10, 10, 0] = 1
    ps = extract_patches(
        image, mask, np.ones(image.shape, bool), 1, 9, np.random.default_rng(0), -20, healthy_per_lesion=0, context=1
    )
    assert ps.x.shape == (1, 3, 9, 9)
    assert [int(ps.x[0, c, 4, 4]) for c in range(3)] == [10, 10, 20]  # slice 0 repeats below
    normal = extract_patches(
        image,
        np.zeros_like(mask),
        np.ones(image.shape, bool),
        5,
        9,
        np.random.default_rng(0),
        -20,
        context=1,
        n_healthy=7,
    )
    assert len(normal) == 7 and not normal.y.any()


def test_healthy_centres_by_slice_reach_the_small_end_slices():
    """Per voxel, a 4-voxel end slice next to a 2,500-voxel middle slice almost
    never gives a centre; per slice it gives about half of them."""
    from core.training.patches import _choose_by_slice

    brain = np.zeros((50, 50, 3), bool)
    brain[:, :, 1] = True
    brain[10:12, 10:12, 2] = True
    image = np.zeros(brain.shape, np.int16)
    mask = np.zeros(brain.shape, np.uint8)
    rng = np.random.default_rng(0)
    by_voxel = extract_patches(image, mask, brain, 1, 9, rng, -20, n_healthy=40)
    by_slice = extract_patches(image, mask, brain, 1, 9, rng, -20, n_healthy=40, healthy_by_slice=True)
    assert len(by_voxel) == len(by_slice) == 40
    idx = _choose_by_slice(brain, 40, np.random.default_rng(1))
    assert len(set(idx.tolist())) == 40 and brain.reshape(-1)[idx].all()  # distinct, inside the brain
    per_slice = np.bincount(np.unravel_index(idx, brain.shape)[2], minlength=3)
    assert per_slice[0] == 0 and per_slice[2] == 4  # every voxel of the small slice (it has only 4)
    idx = _choose_by_slice(brain[:, :, 1:3], 8, np.random.default_rng(2))
    assert 2 <= np.bincount(np.unravel_index(idx, (50, 50, 2))[2], minlength=2)[1] <= 4
    with pytest.raises(ConfigError, match="healthy_sampling"):
        load_config("default", None, ["healthy_sampling=edge"])


def test_rotation_and_scaling_move_image_and_mask_together():
    from core.training.trainer import rotate_scale_batch

    rng = np.random.default_rng(0)
    y = np.zeros((6, 1, 32, 32), np.float32)
    y[:, :, 8:14, 10:24] = 1.0  # an off-centre bar: any turn moves it
    x = np.repeat(np.where(y > 0, 80.0, 20.0), 3, axis=1).astype(np.float32)
    xr, yr, _ = rotate_scale_batch(x, y, rng, degrees=30.0, scale=0.2)
    assert xr.shape == x.shape and yr.shape == y.shape and xr.dtype == np.float32
    assert set(np.unique(yr)) <= {0.0, 1.0}  # the mask stays binary
    assert not np.array_equal(yr, y)
    assert xr.min() >= 20.0 - 1e-3 and xr.max() <= 80.0 + 1e-3  # reflection: no foreign values
    # image and mask agree away from the interpolated edge of the bar
    agree = ((xr[:, 0] > 50) == (yr[:, 0] > 0)).mean()
    assert agree > 0.97
    same, _, _ = rotate_scale_batch(x, y, rng, degrees=0.0, scale=0.0)
    np.testing.assert_allclose(same, x, atol=1e-3)


def test_working_grid_prediction_averages_the_mirror():
    """Mirror averaging = the mean of the plain network on the slice and, flipped
    back, on its left-right mirror; the result no longer depends on the side."""
    torch.manual_seed(0)
    conv = InputConvention(in_plane_mm=1.0, context_slices=1)
    net = UNet25D(ds=4)
    with torch.no_grad():
        net.out.bias.fill_(0.0)  # probabilities near 0.5, where differences show
    weights = LoadedWeights(WeightsMeta("unet25d", 4, input=conv), net.state_dict())
    rng = np.random.default_rng(0)
    image = rng.uniform(-20, 100, (40, 36, 5)).astype(np.float32)
    brain = np.zeros(image.shape, bool)
    brain[4:36, 5:30, :] = True
    image[~brain] = -20
    spacing = (1.0, 1.0, 5.0)
    plain = Segmenter(weights, backend="torch", mirror=False)
    mirrored = Segmenter(weights, backend="torch")
    p, _ = run_to_end(plain.probabilities_canonical(image, brain, spacing=spacing))
    pf, _ = run_to_end(plain.probabilities_canonical(image[::-1].copy(), brain[::-1].copy(), spacing=spacing))
    pm, _ = run_to_end(mirrored.probabilities_canonical(image, brain, spacing=spacing))
    assert not np.allclose(p, pf[::-1], atol=1e-3)  # the network alone is not symmetric
    # crops are the brain's box either way, so the mirror of the crop is the crop of the mirror
    np.testing.assert_allclose(pm, 0.5 * (p + pf[::-1]), atol=1e-5)


def test_dice_bce_by_hand_and_its_gradient_where_soft_dice_is_flat():
    y = torch.tensor([1.0, 0.0, 0.0, 1.0])
    p = torch.tensor([0.8, 0.1, 0.3, 0.6])
    bce = -(np.log(0.8) + np.log(0.9) + np.log(0.7) + np.log(0.6)) / 4
    sd = (2 * 1.4 + 1) / (2 + 1.8 + 1)
    assert float(binary_cross_entropy(y, p)) == pytest.approx(bce, rel=1e-5)
    assert float(dice_bce(y, p)) == pytest.approx(1 - sd + bce, rel=1e-5)
    assert float(soft_dice(y, p)) == pytest.approx(sd, rel=1e-5)
    # A collapsed, all-empty output on a large batch: soft Dice barely moves, the
    # cross-entropy term still pulls the blood pixels up.
    y = torch.zeros(10000)
    y[:50] = 1
    logits = torch.full((10000,), -12.0, requires_grad=True)
    (1 - soft_dice(y, torch.sigmoid(logits))).backward()
    g_dice = float(logits.grad[:50].abs().mean())
    logits.grad = None
    dice_bce(y, torch.sigmoid(logits)).backward()
    g_both = float(logits.grad[:50].abs().mean())
    assert g_both > 100 * g_dice


def test_augmentation_flips_image_and_mask_together_and_keeps_hu():
    rng = np.random.default_rng(3)
    x = rng.normal(40, 10, (16, 3, 8, 8)).astype(np.float32)
    y = (x[:, 1:2] > 45).astype(np.float32)
    xa, ya, _ = augment_batch(x, y, rng)
    assert xa.shape == x.shape and ya.shape == y.shape
    flipped = 0
    for n in range(16):
        # some flip of the original reproduces both image (up to a constant shift) and mask
        found = False
        for fi in (False, True):
            for fj in (False, True):
                xo, yo = x[n], y[n]
                if fi:
                    xo, yo = xo[:, ::-1], yo[:, ::-1]
                if fj:
                    xo, yo = xo[:, :, ::-1], yo[:, :, ::-1]
                d = xa[n] - xo
                if np.array_equal(ya[n], yo) and np.ptp(d) < 1e-4 and abs(float(d.mean())) <= 3.0:
                    found = True
                    flipped += fi or fj
        assert found
    assert 0 < flipped < 16 * 3  # flips happen, at random


_FLUSH_CHECK = """
import numpy as np, torch
from core.model.architectures import build_network
from core.model.weights import LoadedWeights, WeightsMeta
from core.progress import run_to_end
from core.training.loss import soft_dice
from core.training.patches import extract_patches, split_patches
from core.training.trainer import EpochTrainer, PatchData
from core.evaluation.inference import Segmenter

def flushed():  # 1e-30 * 1e-10 is a denormal float32 unless flush-to-zero is on
    return float(torch.tensor([1e-30]) * torch.tensor([1e-10])) == 0.0

assert not flushed()
if "{what}" == "train":
    rng = np.random.default_rng(0)
    image = rng.normal(30, 5, (16, 16, 2)).astype(np.float32)
    mask = np.zeros(image.shape, np.uint8)
    mask[6:9, 6:9, 0] = 1
    ps = extract_patches(image, mask, np.ones(image.shape, bool), 4, 8, rng, -20.0)
    train, val = split_patches(ps, 0.25, "patch", rng)
    trainer = EpochTrainer(lambda: build_network("inception", 4), lambda y, p: 1 - soft_dice(y, p),
                           PatchData(train, val), batch_size=4, threads=1)
    run_to_end(trainer.train_epochs(trainer.initial_state(), 1))
else:
    Segmenter(LoadedWeights(WeightsMeta("inception", 4), build_network("inception", 4).state_dict()),
              backend="torch")
assert flushed()
print("ok")
"""


@pytest.mark.parametrize("what", ["train", "predict"])
def test_training_and_prediction_flush_denormals(what):
    """A collapsed network computes in denormal floats (2-4x slower epochs); the
    trainer and the segmenter both switch flush-to-zero on (checked in a fresh
    interpreter, where it starts off)."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", _FLUSH_CHECK.replace("{what}", what)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


def _site(root: Path, src: Path, train: str, normal: str | None) -> Path:
    for sub, case, kinds in (("train", train, ("ct", "mask")), ("normal", normal, ("ct",))):
        if case is None:
            continue
        (root / sub).mkdir(parents=True, exist_ok=True)
        for kind in kinds:
            os.symlink(src / sub / f"{kind}_{case}.nii.gz", root / sub / f"{kind}_{case}.nii.gz")
    return root


@pytest.mark.slow
def test_default_recipe_pools_two_sites_and_predicts_through_the_working_grid(
    site_a: Path, site_b: Path, tmp_path: Path
):
    a = _site(tmp_path / "a", site_a, "071", "057")
    b = _site(tmp_path / "b", site_b, "078", None)
    config = load_config(
        "default",
        None,
        [
            "patches_per_volume=3",
            "normal_patches_per_volume=2",
            "patch_size=64",
            "max_epochs=1",
            "batch_size=4",
            "val_fraction=0.34",
        ],
    )
    cases, normals = training_cases([a, b], config)
    assert len(cases) == 2 and len(normals) == 1
    result = run_to_end(train_site([a, b], tmp_path / "out", config))
    meta = result.meta
    assert meta.architecture == "unet25d-click" and meta.input == replace(WORKING, click_sigma_mm=config.click_sigma_mm)
    assert meta.training["data"]["n_volumes"] == 2 and meta.training["data"]["n_normal_volumes"] == 1
    seg = Segmenter.from_file(result.weights_path)
    ct = load_ct(site_a / "test" / "ct_067.nii.gz")
    pred = run_to_end(seg.predict(ct, keep_probabilities=True))
    assert pred.mask.shape == ct.shape and pred.probabilities.shape == ct.shape
    assert pred.mask.dtype == np.uint8 and set(np.unique(pred.mask)) <= {0, 1}
    assert 0 < pred.slices_run <= ct.shape[2]
    assert pred.probabilities.max() <= 1.0 and pred.probabilities.min() >= 0.0
