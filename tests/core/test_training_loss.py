"""cDC and soft Dice against hand-computed values."""

from __future__ import annotations

import pytest
import torch

from core.errors import ConfigError
from core.training.loss import continuous_dice, get_loss, soft_dice


def t(values):
    return torch.tensor(values, dtype=torch.float32)


def test_continuous_dice_hand_computed():
    y = t([1, 1, 0, 0])
    p = t([0.8, 0.4, 0.2, 0.0])
    # sum(y p) = 1.2; sum(y sign p) = 2 -> c = 0.6; sum(y) = 2; sum(p) = 1.4
    # cDC = (2*1.2 + 1) / (0.6*2 + 1.4 + 1) = 3.4 / 3.6
    assert float(continuous_dice(y, p)) == pytest.approx(3.4 / 3.6, rel=1e-6)
    # soft Dice = 3.4 / (2 + 1.4 + 1)
    assert float(soft_dice(y, p)) == pytest.approx(3.4 / 4.4, rel=1e-6)


def test_sign_of_zero_probability_counts_in_c():
    # a reference voxel with p exactly 0: sign(p) = 0 leaves it out of c's denominator
    y = t([1, 1, 1, 0])
    p = t([0.5, 0.5, 0.0, 0.5])
    # sum(y p) = 1.0; sum(y sign p) = 2 -> c = 0.5; cDC = (2 + 1) / (0.5*3 + 1.5 + 1) = 3/4
    assert float(continuous_dice(y, p)) == pytest.approx(0.75, rel=1e-6)


def test_no_intersection_sets_c_to_one():
    y = t([1, 0])
    p = t([0.0, 0.5])
    # intersection 0 -> c = 1: cDC = (0 + 1) / (1*1 + 0.5 + 1) = 0.4
    assert float(continuous_dice(y, p)) == pytest.approx(0.4, rel=1e-6)
    assert float(soft_dice(y, p)) == pytest.approx(0.4, rel=1e-6)


def test_batch_is_flattened_and_losses_are_one_minus():
    y = t([[[[1, 0], [0, 1]]], [[[0, 0], [1, 1]]]])
    p = t([[[[0.9, 0.1], [0.2, 0.7]]], [[[0.3, 0.0], [0.6, 0.8]]]])
    flat = continuous_dice(y.reshape(-1), p.reshape(-1))
    assert float(continuous_dice(y, p)) == pytest.approx(float(flat))
    assert float(get_loss("cdc")(y, p)) == pytest.approx(1 - float(flat))
    assert float(get_loss("soft_dice")(y, p)) == pytest.approx(1 - float(soft_dice(y, p)))
    # with sigmoid-like outputs (all p > 0), c is the mean probability inside the mask
    c = float((y * p).sum() / y.sum())
    inter = float((y * p).sum())
    expected = (2 * inter + 1) / (c * float(y.sum()) + float(p.sum()) + 1)
    p_pos = p.clamp_min(1e-6)
    inter_pos = float((y * p_pos).sum())
    c_pos = inter_pos / float(y.sum())
    assert float(continuous_dice(y, p_pos)) == pytest.approx(
        (2 * inter_pos + 1) / (c_pos * float(y.sum()) + float(p_pos.sum()) + 1), rel=1e-6
    )
    assert expected != pytest.approx(float(soft_dice(y, p)))  # cDC really differs from soft Dice


def test_gradient_flows_and_unknown_loss():
    p = torch.tensor([0.6, 0.3, 0.2], requires_grad=True)
    loss = get_loss("cdc")(t([1, 1, 0]), p)
    loss.backward()
    assert p.grad is not None and torch.isfinite(p.grad).all()
    assert float(p.grad[0]) < 0  # raising p on a reference voxel lowers the loss
    with pytest.raises(ConfigError):
        get_loss("focal")


def test_cdc_rewards_the_empty_prediction_soft_dice_does_not():
    # Why the presets train soft Dice: with c computed from p, cDC -> 1 as p -> 0.
    y = torch.zeros(1000)
    y[:100] = 1
    tiny = torch.full((1000,), 1e-7)
    assert float(continuous_dice(y, tiny)) == pytest.approx(1.0, abs=1e-4)
    assert float(soft_dice(y, tiny)) == pytest.approx(1 / 101, rel=1e-3)
    perfect = y.clone()
    assert float(soft_dice(y, perfect)) == pytest.approx(1.0)
