"""The ring-agnostic trainer: turns, reproducibility, resume, cancel, convergence."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from core.errors import CancelledError
from core.model.architectures import build_network
from core.progress import CancelToken, run_collecting, run_to_end
from core.training.checkpoint import load_checkpoint, optimizer_from_tensors, optimizer_to_tensors, save_checkpoint
from core.training.loss import get_loss
from core.training.patches import extract_patches, split_patches
from core.training.trainer import EpochTrainer, PatchData, TrainingProgress, TrainState, fit


def _data(n=6, size=12, seed=0):
    rng = np.random.default_rng(seed)
    image = rng.normal(30, 8, (24, 24, 3)).astype(np.float32)
    mask = np.zeros(image.shape, np.uint8)
    mask[8:14, 9:15, 1] = 1
    image[mask == 1] += 45
    ps = extract_patches(image, mask, np.ones(image.shape, bool), n, size, rng, -20.0)
    train, val = split_patches(ps, 0.25, "patch", rng)
    return PatchData(train, val)


def _trainer(seed=1, **kw):
    return EpochTrainer(
        lambda: build_network("inception", 4), get_loss("cdc"), _data(), batch_size=4, seed=seed, threads=1, **kw
    )


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_turn_runs_k_epochs_and_reports_typed_progress():
    tr = _trainer()
    events, result = run_collecting(tr.train_epochs(tr.initial_state(), 2))
    assert all(isinstance(e, TrainingProgress) for e in events)
    ends = [e for e in events if e.phase == "epoch_end"]
    assert [e.epoch for e in ends] == [1, 2]
    assert ends[-1].val_loss == result.epochs[-1].val_loss
    assert ends[-1].best_val_loss == min(m.val_loss for m in result.epochs)
    assert events[-1].done == events[-1].total and events[-1].eta_s == pytest.approx(0.0, abs=1e-6)
    train_events = [e for e in events if e.phase == "train"]
    assert train_events[0].batch == 1 and train_events[0].n_batches == math.ceil(tr.data.n_train / 4)
    assert result.state.epoch == 2 and result.state.optimizer is not None
    m = result.epochs[0]
    assert (m.n_train, m.n_val) == (tr.data.n_train, tr.data.n_val) and math.isfinite(m.train_loss)
    assert not _same(result.state.weights, tr.initial_state().weights)


def test_same_seed_same_weights_other_seed_differs():
    a = run_to_end(_trainer(seed=5).train_epochs(_trainer(seed=5).initial_state(), 2)).state
    b = run_to_end(_trainer(seed=5).train_epochs(_trainer(seed=5).initial_state(), 2)).state
    c = run_to_end(_trainer(seed=6).train_epochs(_trainer(seed=6).initial_state(), 2)).state
    assert _same(a.weights, b.weights)
    assert not _same(a.weights, c.weights)


def test_resume_from_checkpoint_equals_uninterrupted(tmp_path):
    tr = _trainer()
    straight = run_to_end(tr.train_epochs(tr.initial_state(), 3)).state
    first = run_to_end(tr.train_epochs(tr.initial_state(), 2)).state
    path = save_checkpoint(tmp_path / "c.safetensors", first, {"seed": 1})
    restored, cfg = load_checkpoint(path)
    assert cfg == {"seed": 1} and restored.epoch == 2 and restored.best_epoch == first.best_epoch
    assert [m.val_loss for m in restored.history] == [m.val_loss for m in first.history]
    resumed = run_to_end(tr.train_epochs(restored, 1)).state
    assert _same(resumed.weights, straight.weights)
    assert _same(resumed.best_weights, straight.best_weights)


def test_optimizer_state_travels_as_tensors_and_json():
    tr = _trainer()
    st = run_to_end(tr.train_epochs(tr.initial_state(), 1)).state
    tensors, info = optimizer_to_tensors(st.optimizer)
    import json

    back = optimizer_from_tensors(tensors, json.loads(json.dumps(info)))
    assert back["param_groups"][0]["betas"] == st.optimizer["param_groups"][0]["betas"]
    for pid, per in st.optimizer["state"].items():
        for key, value in per.items():
            assert torch.equal(back["state"][pid][key], value)
    # a turn started without optimizer state (fresh Adam) differs from one that has it
    with_state = run_to_end(tr.train_epochs(st, 1)).state
    without = run_to_end(tr.train_epochs(TrainState(weights=st.weights, epoch=1), 1)).state
    assert not _same(with_state.weights, without.weights)


def test_cancel_stops_between_batches():
    tr = _trainer()
    token = CancelToken()
    gen = tr.train_epochs(tr.initial_state(), 3, token)
    next(gen)
    token.cancel()
    with pytest.raises(CancelledError):
        next(gen)


def test_fit_stops_after_patience_and_keeps_best():
    tr = _trainer(min_delta=10.0)  # no improvement is ever "large enough"
    seen = []
    result = run_to_end(fit(tr, tr.initial_state(), patience=2, max_epochs=10, on_epoch=lambda s: seen.append(s.epoch)))
    # epoch 1 sets the reference (improvement from infinity); then 2 epochs without
    assert result.stopped == "converged" and result.state.epoch == 3 and seen == [1, 2, 3]
    losses = [m.val_loss for m in result.state.history]
    assert result.state.best_epoch == 1 + int(np.argmin(losses))
    capped = run_to_end(fit(_trainer(), _trainer().initial_state(), patience=50, max_epochs=2))
    assert capped.stopped == "max_epochs" and capped.state.epoch == 2
