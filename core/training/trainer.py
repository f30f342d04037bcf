"""An epoch-based trainer that knows nothing about hematomas or hospitals.

The unit of work is a *turn*: ``train_epochs(state, k, token)`` runs ``k``
epochs starting from ``state`` (weights, optional Adam state, epoch counter,
best-so-far bookkeeping) and returns a new state plus per-epoch metrics. The
cyclic-weight-transfer ring calls exactly this, with weights that arrived from
the previous site; :func:`fit` calls it one epoch at a time until convergence.
Nothing here sees a case identifier: data arrive as a :class:`PatchData` of
arrays, and metrics are losses and counts.

Reproducible on CPU: the initial weights come from ``seed``; each epoch's
shuffle order and dropout draw from generators seeded by ``(seed, epoch)``,
so a run resumed from a checkpoint produces the same weights as one that was
never interrupted, and two runs with the same seed and data give identical
weights (same torch build and thread count).
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field, replace
from typing import Callable, Generator

import numpy as np
import torch
from torch import nn

from ..model.numerics import flush_denormals
from ..progress import NEVER_CANCELLED, CancelToken, Progress, relay
from ..ring.trainer import load_site_optimizer_state
from .clicks import ClickTraining, with_training_clicks, with_validation_clicks
from .patches import PatchSet

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
StateDict = dict[str, torch.Tensor]


def _copy(net: nn.Module) -> StateDict:
    """Contiguous copies of the weights (safe to save, share or compare)."""
    return {k: v.detach().contiguous().clone() for k, v in net.state_dict().items()}


@dataclass(frozen=True)
class PatchData:
    train: PatchSet
    val: PatchSet

    @property
    def n_train(self) -> int:
        return len(self.train)

    @property
    def n_val(self) -> int:
        return len(self.val)


@dataclass(frozen=True)
class EpochMetrics:
    epoch: int  # 1-based number of the epoch just finished
    train_loss: float
    val_loss: float
    n_train: int
    n_val: int
    seconds: float

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class TrainState:
    """Everything needed to continue training; copied, never shared, by the trainer."""

    weights: StateDict
    optimizer: dict | None = None  # torch Adam state_dict; None = fresh Adam
    epoch: int = 0  # epochs completed
    best_val_loss: float = math.inf  # lowest validation loss seen
    best_epoch: int = 0
    best_weights: StateDict | None = None
    patience_ref: float = math.inf  # loss at the last improvement larger than min_delta
    epochs_since_improvement: int = 0
    history: list[EpochMetrics] = field(default_factory=list)


@dataclass(frozen=True)
class TrainingProgress(Progress):
    phase: str = "train"  # "train", "validate", then one "epoch_end" per epoch
    epoch: int = 0  # 1-based epoch in progress
    batch: int = 0  # batches done in this phase
    n_batches: int = 0
    loss: float | None = None  # running mean training loss of this epoch
    val_loss: float | None = None  # of the last finished epoch (this one at "epoch_end")
    best_val_loss: float | None = None


@dataclass(frozen=True)
class EpochsResult:
    """What ``train_epochs`` returns (the ring's own result type is core.ring.trainer.TurnResult)."""

    state: TrainState
    epochs: list[EpochMetrics]


class EpochTrainer:
    """Adam on a network built by ``make_network``, batches drawn from ``data``."""

    def __init__(
        self,
        make_network: Callable[[], nn.Module],
        loss_fn: LossFn,
        data: PatchData,
        batch_size: int = 8,
        learning_rate: float = 1e-4,
        seed: int = 0,
        min_delta: float = 1e-4,
        threads: int = 0,
        channels_last: bool = True,
        augment: bool = False,
        lr_schedule: str = "constant",
        schedule_epochs: int = 0,
        rotate_degrees: float = 0.0,
        scale_jitter: float = 0.0,
        clicks: ClickTraining | None = None,
    ) -> None:
        if data.n_train == 0 or data.n_val == 0:
            raise ValueError("training needs at least one training and one validation patch")
        if clicks is not None and (data.train.y_context is None or data.val.y_context is None):
            raise ValueError("training with clicks needs patches with the reference of the slices around them")
        self.clicks = clicks
        self.make_network = make_network
        self.loss_fn = loss_fn
        self.data = data
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.seed = seed
        self.min_delta = min_delta
        self.threads = threads
        self.augment = augment
        self.rotate_degrees = rotate_degrees
        self.scale_jitter = scale_jitter
        self.lr_schedule = lr_schedule
        self.schedule_epochs = schedule_epochs
        # channels-last runs oneDNN's fast convolution kernels (about 2x on CPU).
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format

    # ------------------------------------------------------------------ state
    def initial_state(self) -> TrainState:
        torch.manual_seed(self.seed)
        net = self.make_network()
        return TrainState(weights=_copy(net))

    def _network(self, weights: StateDict) -> nn.Module:
        net = self.make_network()
        net.load_state_dict(weights)
        return net.to(memory_format=self.memory_format)

    def learning_rate_at(self, epoch: int) -> float:
        """The rate for 1-based ``epoch``: constant, or a cosine from the configured
        rate down to 5% of it at ``schedule_epochs`` (and 5% after that)."""
        if self.lr_schedule != "cosine" or self.schedule_epochs <= 1:
            return self.learning_rate
        t = min(max(epoch - 1, 0) / (self.schedule_epochs - 1), 1.0)
        return self.learning_rate * (0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * t)))

    def _optimizer(self, net: nn.Module, state: dict | None) -> torch.optim.Adam:
        opt = torch.optim.Adam(net.parameters(), lr=self.learning_rate)
        if state is not None:
            load_site_optimizer_state(opt, net, copy.deepcopy(state))
        return opt

    # ---------------------------------------------------------------- batches
    def _batches(
        self,
        patches: PatchSet,
        order: np.ndarray,
        rng: np.random.Generator | None = None,
        net: nn.Module | None = None,
    ):
        """Batches of ``patches`` in ``order``; with ``rng``, augmented (training).

        With click training, ``net`` (training) or no ``net`` (validation) decides
        how the guidance channels are filled (:mod:`.clicks`).
        """
        for start in range(0, order.size, self.batch_size):
            idx = np.sort(order[start : start + self.batch_size])
            xb, yb = patches.x[idx].astype(np.float32), patches.y[idx].astype(np.float32)
            ctx = patches.y_context[idx] if self.clicks is not None else None
            if rng is not None and self.augment:
                xb, yb, ctx = augment_batch(xb, yb, rng, ctx)
                if self.rotate_degrees or self.scale_jitter:
                    xb, yb, ctx = rotate_scale_batch(xb, yb, rng, self.rotate_degrees, self.scale_jitter, ctx)
            if self.clicks is not None:
                assert ctx is not None and patches.spacing is not None
                spacing = patches.spacing[idx]
                if net is not None and rng is not None:
                    xb = with_training_clicks(xb, yb, ctx, spacing, rng, self.clicks, self._predictor(net))
                else:
                    xb = with_validation_clicks(xb, ctx, spacing, idx, self.clicks, self.seed)
            x = torch.from_numpy(xb).contiguous(memory_format=self.memory_format)
            y = torch.from_numpy(yb)
            yield x, y

    def _predictor(self, net: nn.Module):
        def predict(x: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                return net(torch.from_numpy(x).contiguous(memory_format=self.memory_format)).numpy()

        return predict

    def _epoch_seed(self, epoch: int) -> int:
        return (self.seed * 1_000_003 + epoch * 7_919) % (2**63 - 1)

    # ------------------------------------------------------------------- turn
    def train_epochs(
        self, state: TrainState, k: int, token: CancelToken = NEVER_CANCELLED
    ) -> Generator[TrainingProgress, None, EpochsResult]:
        """Run ``k`` epochs from ``state``; yields progress, returns the new state."""
        prev_threads = torch.get_num_threads()
        if self.threads:
            torch.set_num_threads(self.threads)
        flush_denormals()
        try:
            return (yield from self._train_epochs(state, k, token))
        finally:
            torch.set_num_threads(prev_threads)

    def _train_epochs(self, state: TrainState, k: int, token: CancelToken):
        net = self._network(state.weights)
        opt = self._optimizer(net, state.optimizer)
        st = replace(state, history=list(state.history))
        n_train_batches = math.ceil(self.data.n_train / self.batch_size)
        n_val_batches = math.ceil(self.data.n_val / self.batch_size)
        per_epoch = n_train_batches + n_val_batches
        done_batches, t0 = 0, time.monotonic()
        finished: list[EpochMetrics] = []
        last_val = state.history[-1].val_loss if state.history else None
        for _ in range(k):
            epoch = st.epoch + 1
            t_epoch = time.monotonic()
            seed = self._epoch_seed(epoch)
            torch.manual_seed(seed)  # dropout (U-Net) draws from the global generator
            rng = np.random.default_rng(seed)
            order = rng.permutation(self.data.n_train)
            for group in opt.param_groups:
                group["lr"] = self.learning_rate_at(epoch)
            net.train()
            total, count = 0.0, 0
            batches = self._batches(self.data.train, order, rng, net)
            for b, (x, y) in enumerate(batches, 1):
                token.raise_if_cancelled()
                opt.zero_grad(set_to_none=True)
                loss = self.loss_fn(y, net(x))
                loss.backward()
                opt.step()
                total += float(loss.detach()) * x.shape[0]
                count += x.shape[0]
                done_batches += 1
                yield self._event(
                    "train", epoch, b, n_train_batches, total / count, last_val, st, done_batches, k * per_epoch, t0
                )
            train_loss = total / count
            net.eval()
            vtotal, vcount = 0.0, 0
            with torch.inference_mode():
                order = np.arange(self.data.n_val)
                for b, (x, y) in enumerate(self._batches(self.data.val, order), 1):
                    token.raise_if_cancelled()
                    vtotal += float(self.loss_fn(y, net(x))) * x.shape[0]
                    vcount += x.shape[0]
                    done_batches += 1
                    yield self._event(
                        "validate", epoch, b, n_val_batches, train_loss, last_val, st, done_batches, k * per_epoch, t0
                    )
            val_loss = vtotal / vcount
            metrics = EpochMetrics(
                epoch, train_loss, val_loss, self.data.n_train, self.data.n_val, time.monotonic() - t_epoch
            )
            st = self._after_epoch(st, net, metrics)
            finished.append(metrics)
            last_val = val_loss
            yield self._event(
                "epoch_end",
                epoch,
                n_val_batches,
                n_val_batches,
                train_loss,
                val_loss,
                st,
                done_batches,
                k * per_epoch,
                t0,
            )
        st.weights = _copy(net)
        st.optimizer = copy.deepcopy(opt.state_dict())
        return EpochsResult(st, finished)

    def _after_epoch(self, st: TrainState, net: nn.Module, m: EpochMetrics) -> TrainState:
        st.epoch = m.epoch
        st.history.append(m)
        if m.val_loss < st.best_val_loss:  # keep the best weights on any improvement
            st.best_val_loss, st.best_epoch = m.val_loss, m.epoch
            st.best_weights = _copy(net)
        if st.patience_ref - m.val_loss > self.min_delta:  # the convergence rule's improvement
            st.patience_ref = m.val_loss
            st.epochs_since_improvement = 0
        else:
            st.epochs_since_improvement += 1
        return st

    @staticmethod
    def _event(phase, epoch, batch, n_batches, loss, val_loss, st, done, total, t0) -> TrainingProgress:
        elapsed = time.monotonic() - t0
        eta = elapsed / done * (total - done) if done else None
        best = st.best_val_loss if math.isfinite(st.best_val_loss) else None
        return TrainingProgress(
            stage=f"Epoch {epoch}",
            done=done,
            total=total,
            eta_s=eta,
            message=f"{phase} batch {batch}/{n_batches}",
            phase=phase,
            epoch=epoch,
            batch=batch,
            n_batches=n_batches,
            loss=loss,
            val_loss=val_loss,
            best_val_loss=best,
        )


def augment_batch(
    x: np.ndarray, y: np.ndarray, rng: np.random.Generator, context: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Random flips of both image axes and a small intensity shift, per patch.

    Flips keep the physics (a bleed on the left looks like one on the right);
    the shift (up to 3 units, i.e. HU) covers scanner calibration differences
    without moving blood out of its range. Rotations and scaling are
    :func:`rotate_scale_batch` (off in the product recipe: they did not help on
    the validation split). ``context`` (the reference of the neighbouring
    slices, for click training) is flipped with the patch.
    """
    x, y = x.copy(), y.copy()
    context = None if context is None else context.copy()
    n = x.shape[0]
    for axis in (2, 3):
        flip = rng.random(n) < 0.5
        x[flip] = np.flip(x[flip], axis=axis)
        y[flip] = np.flip(y[flip], axis=axis)
        if context is not None:
            context[flip] = np.flip(context[flip], axis=axis)
    x += rng.uniform(-3.0, 3.0, size=(n, 1, 1, 1)).astype(np.float32)
    return np.ascontiguousarray(x), np.ascontiguousarray(y), None if context is None else np.ascontiguousarray(context)


def rotate_scale_batch(
    x: np.ndarray,
    y: np.ndarray,
    rng: np.random.Generator,
    degrees: float,
    scale: float,
    context: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Each patch turned by up to ``degrees`` and zoomed by a factor within
    ``1 +- scale`` about its centre, image and mask with the same transform.

    Heads lie tilted in the gantry and differ in size; 19 training volumes show
    few of those poses. One batched ``grid_sample`` (a few ms per batch on 2
    cores, next to ~250 ms for the network's step). Linear interpolation for
    the image, and for the masks (``y``, and ``context`` when given) followed by
    a 0.5 threshold (they stay 0/1); the edges are filled by reflection, so no
    value foreign to the patch (such as 0 HU) appears in a corner.
    """
    n = x.shape[0]
    angle = np.deg2rad(rng.uniform(-degrees, degrees, n))
    zoom = rng.uniform(1.0 - scale, 1.0 + scale, n)
    cos, sin = np.cos(angle) / zoom, np.sin(angle) / zoom
    theta = np.zeros((n, 2, 3), np.float32)
    theta[:, 0, 0], theta[:, 0, 1], theta[:, 1, 0], theta[:, 1, 1] = cos, -sin, sin, cos
    parts = [x, y] + ([] if context is None else [context.astype(np.float32)])
    both = torch.from_numpy(np.concatenate(parts, axis=1))
    grid = torch.nn.functional.affine_grid(torch.from_numpy(theta), list(both.shape), align_corners=False)
    out = torch.nn.functional.grid_sample(both, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    c, cy = x.shape[1], x.shape[1] + y.shape[1]
    y_out = np.ascontiguousarray((out[:, c:cy] >= 0.5).float().numpy())
    ctx_out = None if context is None else np.ascontiguousarray((out[:, cy:] >= 0.5).numpy().astype(np.uint8))
    return np.ascontiguousarray(out[:, :c].numpy()), y_out, ctx_out


# ---------------------------------------------------------------- convergence
@dataclass(frozen=True)
class FitResult:
    state: TrainState
    stopped: str  # "converged" or "max_epochs"


def fit(
    trainer: EpochTrainer,
    state: TrainState,
    patience: int,
    max_epochs: int,
    token: CancelToken = NEVER_CANCELLED,
    on_epoch: Callable[[TrainState], None] | None = None,
) -> Generator[TrainingProgress, None, FitResult]:
    """Train until ``patience`` epochs pass without a validation improvement
    larger than the trainer's ``min_delta`` (the paper's rule), or until
    ``max_epochs``. ``on_epoch`` (e.g. a checkpoint writer) runs after every
    epoch. The ETA is the time left if no further improvement comes, a lower
    bound: every improvement buys ``patience`` more epochs.
    """
    epoch_seconds: float | None = state.history[-1].seconds if state.history else None
    while True:
        if state.epoch >= max_epochs:
            return FitResult(state, "max_epochs")
        if state.history and state.epochs_since_improvement >= patience:
            return FitResult(state, "converged")
        left = min(patience - state.epochs_since_improvement, max_epochs - state.epoch) - 1
        t_epoch = time.monotonic()

        def whole_fit(ev: TrainingProgress) -> TrainingProgress:  # the ETA of the whole fit, not this epoch
            eta = None
            if ev.eta_s is not None:
                per_epoch = epoch_seconds or (time.monotonic() - t_epoch + ev.eta_s)
                eta = ev.eta_s + max(left, 0) * per_epoch
            return replace(ev, eta_s=eta, message=f"{ev.message} (at most {max_epochs} epochs)")

        result: EpochsResult = yield from relay(trainer.train_epochs(state, 1, token), convert=whole_fit)
        state = result.state
        epoch_seconds = result.epochs[-1].seconds
        if on_epoch is not None:
            on_epoch(state)
