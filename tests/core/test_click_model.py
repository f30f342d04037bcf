"""One network for two uses (issue 22): the click encoding, the network that takes
clicks, its weights files and ring ids, the simulated clicks of training, and the
click tool's rule for turning clicks into a mask."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from core.annotation.click_segment import Click, ClickContext
from core.annotation.fill import FILL_LIMIT_ML_DEFAULT
from core.annotation.stack import AxialStack
from core.errors import ConfigError, InputError
from core.evaluation.inference import Segmenter, WorkingGrid
from core.model.architectures import build_network, guidance_channels
from core.model.guidance import FLOOR, GuidancePoint, reach_mm, render
from core.model.input import InputConvention
from core.model.unet25d import ClickUNet25D, UNet25D
from core.model.weights import LoadedWeights, WeightsMeta, load_weights, save_weights
from core.training.clicks import ClickTraining, error_click, with_training_clicks, with_validation_clicks
from core.training.config import load_config
from core.training.ring_turn import convention_for, model_id_for

CLICKS = InputConvention(in_plane_mm=0.8, context_slices=1, click_sigma_mm=5.0)


# ------------------------------------------------------------------ encoding
def test_guidance_is_a_3d_gaussian_in_mm_with_a_finite_reach():
    sigma = 5.0
    g = render((21, 31), (0.5, 0.5), [GuidancePoint(5.0, 7.5, 0.0, True)], sigma)
    assert g.shape == (2, 21, 31) and g.dtype == np.float32
    assert g[0, 10, 15] == pytest.approx(1.0) and not g[1].any()
    assert g[0, 10, 25] == pytest.approx(math.exp(-(5.0**2) / (2 * sigma**2)), rel=1e-5)  # 10 px = 5 mm away
    # one 5 mm slice away: the same position is weaker, two slices away weaker still
    g1 = render((21, 31), (0.5, 0.5), [GuidancePoint(5.0, 7.5, 5.0, False)], sigma)
    assert g1[1, 10, 15] == pytest.approx(math.exp(-0.5), rel=1e-5) and not g1[0].any()
    # beyond the reach nothing at all, and below the floor exactly 0
    assert not render((5, 5), (1, 1), [GuidancePoint(2, 2, reach_mm(sigma) + 0.1, True)], sigma).any()
    far = render((1, 200), (1.0, 1.0), [GuidancePoint(0, 0, 0.0, True)], sigma)[0, 0]
    assert far.min() == 0.0 and far[far > 0].min() >= FLOOR
    # overlapping clicks of one sign: the maximum, not the sum
    two = render((1, 3), (1, 1), [GuidancePoint(0, 1, 0, True), GuidancePoint(0, 1, 0, True)], sigma)
    assert two[0, 0, 1] == pytest.approx(1.0)


# ------------------------------------------------------------------ network and files
def test_click_network_segments_with_zero_guidance_like_its_base():
    torch.manual_seed(0)
    net = ClickUNet25D(4).eval()
    assert guidance_channels("unet25d-click") == 2 and guidance_channels("unet25d") == 0
    x = torch.randn(2, 3, 40, 36) * 30 + 40
    with torch.no_grad():
        out = net(torch.cat([x, torch.zeros(2, 2, 40, 36)], 1))
        clicked = net(torch.cat([x, torch.ones(2, 2, 40, 36)], 1))
    assert out.shape == (2, 1, 40, 36) and not torch.equal(out, clicked)
    base = UNet25D(4)
    # only the first convolution differs: two more input channels
    diff = {k for k, v in net.state_dict().items() if v.shape != base.state_dict()[k].shape}
    assert diff == {"down.0.conv1.weight"}


def test_click_weights_round_trip_and_refuse_a_mismatched_convention(tmp_path: Path):
    net = build_network("unet25d-click", 4)
    path = tmp_path / "click.safetensors"
    save_weights(path, net.state_dict(), WeightsMeta("unet25d-click", 4, input=CLICKS))
    loaded = load_weights(path)
    assert loaded.meta.input == CLICKS and loaded.meta.input.takes_clicks
    bad = tmp_path / "bad.safetensors"
    save_weights(
        bad, net.state_dict(), WeightsMeta("unet25d-click", 4, input=InputConvention(in_plane_mm=0.8, context_slices=1))
    )
    with pytest.raises(InputError, match="clicks"):
        load_weights(bad)


def test_config_ties_clicks_to_the_network():
    cfg = load_config("default")
    assert cfg.architecture == "unet25d-click" and cfg.input_convention().click_sigma_mm > 0
    with pytest.raises(ConfigError, match="click_sigma_mm"):
        load_config("default", None, ["click_sigma_mm=0"])
    with pytest.raises(ConfigError, match="click_sigma_mm"):
        load_config("default", None, ['architecture="unet25d"'])
    # the paper's presets are as they were
    assert load_config("paper").click_sigma_mm == 0 and load_config("paper").architecture == "inception"


def test_ring_model_id_names_the_click_network():
    model_id = model_id_for("unet25d-click", 4, CLICKS)
    assert model_id == "unet25d-click-ds4-0.8mm-clicks5mm"
    assert convention_for(model_id) == CLICKS
    assert convention_for("unet25d-ds4-0.8mm") == InputConvention(in_plane_mm=0.8, context_slices=1)
    with pytest.raises(InputError):
        convention_for("unet25d-ds4-0.8mm-clicks5mm")  # a click width for a network without clicks


# ------------------------------------------------------------------ simulated clicks
def test_error_click_is_the_most_interior_pixel_of_the_largest_error_false_negatives_on_ties():
    ref = np.zeros((20, 20), np.uint8)
    ref[2:9, 2:9] = 1  # missed entirely: 49 pixels
    prob = np.zeros((20, 20), np.float32)
    prob[12:19, 12:19] = 0.9  # a false bleed of the same size
    p = error_click(ref, prob, np.array([1.0, 1.0, 5.0]))
    assert p is not None and p.positive and (p.row_mm, p.col_mm) == (5.0, 5.0)
    prob[12:20, 12:20] = 0.9  # now the false one is larger
    p = error_click(ref, prob, np.array([1.0, 1.0, 5.0]))
    assert p is not None and not p.positive and p.dz_mm == 0
    assert error_click(ref, ref.astype(np.float32), np.array([1.0, 1.0, 5.0])) is None


def test_training_clicks_add_two_channels_and_free_patches_stay_unguided():
    rng = np.random.default_rng(0)
    x = np.full((4, 3, 32, 32), 30.0, np.float32)
    y = np.zeros((4, 1, 32, 32), np.float32)
    y[:, 0, 10:20, 10:20] = 1
    ctx = np.repeat(y.astype(np.uint8), 5, axis=1)
    spacing = np.tile(np.array([0.8, 0.8, 5.0], np.float32), (4, 1))
    calls = []

    def predict(xb):
        calls.append(xb.shape)
        return np.zeros((xb.shape[0], 1, 32, 32), np.float32)  # misses everything

    free = with_training_clicks(x, y, ctx, spacing, rng, ClickTraining(5.0, free_fraction=1.0), predict)
    assert free.shape == (4, 5, 32, 32) and not free[:, 3:].any() and not calls
    out = with_training_clicks(x, y, ctx, spacing, rng, ClickTraining(5.0, free_fraction=0.0, random=0), predict)
    assert calls and out[:, 3].max(axis=(1, 2)).min() == pytest.approx(1.0)  # every patch got its error click
    # the error click sits inside the missed bleed
    assert all(np.unravel_index(np.argmax(out[s, 3]), (32, 32))[0] in range(10, 20) for s in range(4))
    v1 = with_validation_clicks(x, ctx, spacing, np.arange(4), ClickTraining(5.0), seed=3)
    v2 = with_validation_clicks(x, ctx, spacing, np.arange(4), ClickTraining(5.0), seed=3)
    assert np.array_equal(v1, v2) and not v1[0, 3:].any() and v1[1, 3].max() > 0


# ------------------------------------------------------------------ the click tool's rule
class _Engine:
    """A stand-in network on the working grid: blood is HU > 60, except that it
    ignores the bright blob at rows >= 20 unless a positive click reaches it and
    sees nothing where the negative guidance is strong."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, grid: WorkingGrid, ks: np.ndarray, guidance=None) -> np.ndarray:
        self.calls += len(ks)
        img = grid.image[grid.box][:, :, ks]
        p = (img > 60).astype(np.float32)
        p[20:] = 0.0
        if guidance is not None:
            pos, neg = np.moveaxis(guidance[:, 0], 0, -1), np.moveaxis(guidance[:, 1], 0, -1)
            p = np.where((img > 60) & (pos > 0), 1.0, p)
            p = np.where(neg > 0.3, 0.0, p)
        return np.moveaxis(p, -1, 0)


def _context() -> tuple[ClickContext, _Engine]:
    """A 30 x 40 x 12 canonical phantom (1 mm pixels, 5 mm slices): a bleed at
    rows 5-10 on slices 3-8 the automatic use finds, and one at rows 24-28 on
    slices 2-9 it does not."""
    ni, nj, nk = 40, 30, 12
    hu = np.full((ni, nj, nk), 30.0, np.float32)
    hu[5:11, 5:11, 3:9] = 70.0  # canonical i 5-10, j 5-10
    hu[24:29, 10:15, 2:10] = 70.0
    affine = np.diag([1.0, 1.0, 5.0, 1.0])
    stack = AxialStack((ni, nj, nk), affine)
    weights = LoadedWeights(
        WeightsMeta("unet25d-click", 4, input=InputConvention(context_slices=1, click_sigma_mm=5.0)), {}
    )
    seg = Segmenter.__new__(Segmenter)
    seg.weights, seg.convention, seg.mirror, seg.guidance_channels = weights, weights.meta.input, False, 2
    engine = _Engine()
    seg.run_working_slices = engine  # type: ignore[method-assign]
    grid = WorkingGrid(hu, np.arange(nk), (0, ni, 0, nj), (1.0, 1.0, 5.0))
    auto = np.moveaxis(engine(grid, np.arange(nk)), 0, -1)
    ctx = ClickContext(
        seg,
        stack,
        np.ones(stack.shape, bool),
        grid,
        auto.copy(),
        auto,
        np.zeros(stack.shape, np.float32),
        hu=stack.to_stack(hu),
    )
    ctx._to_stack(list(range(nk)))
    engine.calls = 0
    return ctx, engine


def _stack_click(ctx: ClickContext, i: int, j: int, k: int, positive: bool = True) -> Click:
    ni = ctx.stack.canonical_shape[0]
    return Click(k, j, ni - 1 - i, positive)  # stack [k, row=j, col=ni-1-i]


def test_positive_click_adds_the_bleed_at_the_click_and_runs_only_the_slices_it_reaches():
    ctx, engine = _context()
    assert ctx.reach_slices == 2  # 12.2 mm at sigma 5 mm, slices 5 mm apart
    empty = np.zeros(ctx.stack.shape, np.uint8)
    res = ctx.segment(empty, [_stack_click(ctx, 26, 12, 5)])
    assert engine.calls == 5 and res.slices_run == 5  # slices 3..7
    canon = ctx.stack.from_stack(res.mask)
    assert canon[24:29, 10:15, 3:8].all()  # the missed bleed, where the click reaches
    assert not canon[5:11, 5:11].any()  # the other bleed is not the click's
    # a second call with the same clicks runs nothing; dropping the click restores the automatic use
    assert ctx.segment(empty, [_stack_click(ctx, 26, 12, 5)]).slices_run == 0
    assert not ctx.segment(empty, []).mask.any()
    assert np.array_equal(ctx.prob, _context()[0].prob)


def test_negative_click_removes_only_in_its_part_and_manual_voxels_elsewhere_stay():
    ctx, _ = _context()
    start = (ctx.prob > 0.5).astype(np.uint8)  # the automatic bleed at rows 5-10
    manual = ctx.stack.to_stack(np.zeros(ctx.stack.canonical_shape, np.uint8))
    canon = ctx.stack.from_stack(manual)
    canon[30:33, 20:23, 5] = 1  # a manual stroke elsewhere (HU 30: the network would never call it blood)
    start |= ctx.stack.to_stack(canon)
    res = ctx.segment(start, [_stack_click(ctx, 8, 8, 5, positive=False)])
    out = ctx.stack.from_stack(res.mask)
    assert not out[5:11, 5:11, 4:7].any() and res.removed > 0  # cleared where the click reaches
    assert out[30:33, 20:23, 5].all()  # the manual stroke is kept
    assert res.added == 0


def test_a_positive_click_is_never_cleared_by_a_later_negative_click_in_its_part():
    ctx, _ = _context()
    start = (ctx.prob > 0.5).astype(np.uint8)  # the automatic bleed at rows 5-10
    keep = _stack_click(ctx, 6, 6, 5)  # "this is blood"
    res = ctx.segment(start, [keep, _stack_click(ctx, 9, 9, 5, positive=False)])
    assert res.removed > 0  # the negative click clears its own neighbourhood...
    assert res.mask[keep.k, keep.row, keep.col] == 1  # ...but not the pixel the reviewer called blood


def test_a_weights_file_without_clicks_still_serves_the_click_tool_with_its_automatic_view():
    ctx, engine = _context()
    ctx.segmenter.guidance_channels = 0  # e.g. the unet25d default model of before issue 22
    assert not ctx.takes_clicks and ctx.reach_slices == 0
    empty = np.zeros(ctx.stack.shape, np.uint8)
    found = ctx.segment(empty, [_stack_click(ctx, 8, 8, 5)])  # on the bleed the automatic view finds
    assert engine.calls == 0 and found.slices_run == 0  # the network is not run again
    assert ctx.stack.from_stack(found.mask)[5:11, 5:11, 3:9].all()
    # on the bleed it cannot see, the fill that stops at the bleed's edge answers the click
    missed = ctx.segment(empty, [_stack_click(ctx, 26, 12, 5)])
    assert ctx.stack.from_stack(missed.mask)[24:29, 10:15, 5].all()


def test_a_positive_click_the_model_and_the_fill_leave_out_still_adds_its_neighbourhood():
    ctx, engine = _context()
    empty = np.zeros(ctx.stack.shape, np.uint8)
    # HU 30: the stand-in network never calls it blood and the fill's range leaves it out
    click = _stack_click(ctx, 34, 20, 5)
    res = ctx.segment(empty, [click])
    canon = ctx.stack.from_stack(res.mask)
    assert canon[34, 20, 5] and res.added > 0 and "neighbourhood was added" in res.message
    sk, sr, sc = ctx.stack.spacing
    assert res.added * sr * sc <= np.pi * ctx.near_mm**2 + 2 * sr * sc  # one slice's disk: 5 mm slices
    assert not canon[5:11, 5:11].any() and not canon[24:29, 10:15].any()  # nothing of the bleeds
    ctx.obey_positive = False
    assert not ctx.segment(empty, [click]).mask.any()
    # outside the brain a click adds nothing and does not claim to
    ctx.obey_positive = True
    ctx.brain[:] = False
    outside = ctx.segment(empty, [click])
    assert not outside.mask.any() and "neighbourhood was added" not in outside.message


def test_the_fill_behind_a_positive_click_keeps_the_fills_limit():
    ctx, _ = _context()
    ctx.segmenter.guidance_channels = 0  # the automatic view only: the click falls to the fill
    canon = ctx.stack.from_stack(ctx.hu).copy()
    canon[20:40, :, 2:10] = 70.0  # 24 mL of clot-like HU the automatic view does not call blood
    ctx.hu = ctx.stack.to_stack(canon)
    res = ctx.segment(np.zeros(ctx.stack.shape, np.uint8), [_stack_click(ctx, 30, 15, 5)])
    voxel_ml = float(np.prod(ctx.stack.spacing)) / 1000.0
    assert 0 < res.added * voxel_ml <= FILL_LIMIT_ML_DEFAULT  # 9 mL reachable, 5 mL given
    assert ctx.stack.from_stack(res.mask)[30, 15, 5]  # the voxels nearest the click
