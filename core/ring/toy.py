"""A tiny real trainer that takes ring turns without any medical data.

A two-layer perceptron learns a fixed smooth function of 8 features from
``*.npz`` "cases" in a folder (arrays ``x`` [n, 8] and ``y`` [n]). Each site's
cases come from a differently shifted input distribution, so sites disagree a
little, as real sites do. It exists to test the ring end to end (tests, bench,
``hemarelay ring turn --trainer toy`` as a connection check before real training);
it is an ordinary :class:`~core.ring.trainer.TurnTrainer`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Generator

import numpy as np
import torch
from torch import nn

from ..errors import InputError
from ..progress import CancelToken, EtaClock, Progress
from .trainer import TurnInput, TurnResult, load_site_optimizer_state

N_FEATURES = 8


def toy_cases(site_seed: int, n_cases: int = 4, per_case: int = 64) -> list[tuple[np.ndarray, np.ndarray]]:
    """Synthetic (x, y) cases of one site: a site-specific shift of the inputs."""
    truth = np.random.default_rng(1234).normal(size=(N_FEATURES,)).astype(np.float32)
    rng = np.random.default_rng(site_seed)
    shift = rng.normal(scale=0.5, size=(N_FEATURES,)).astype(np.float32)
    cases = []
    for _ in range(n_cases):
        x = (rng.normal(size=(per_case, N_FEATURES)) + shift).astype(np.float32)
        y = (np.sin(x @ truth / 2) + 0.05 * rng.normal(size=per_case)).astype(np.float32)
        cases.append((x, y))
    return cases


def write_toy_site(
    folder: Path, site_seed: int, n_cases: int = 4, per_case: int = 64, prefix: str = "case"
) -> list[Path]:
    """Write ``n_cases`` synthetic cases ``<prefix>-NNNN.npz`` into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, (x, y) in enumerate(toy_cases(site_seed, n_cases, per_case)):
        p = folder / f"{prefix}-{site_seed:02d}{i:02d}.npz"
        np.savez(p, x=x, y=y)
        paths.append(p)
    return paths


def _load_cases(folder: Path, synthetic_seed: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    files = sorted(Path(folder).glob("*.npz"))
    if not files:
        if synthetic_seed is None:
            raise InputError(f"{folder}: no toy cases (*.npz) found.")
        xs, ys = zip(*toy_cases(synthetic_seed))
        return torch.from_numpy(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys))
    xs, ys = [], []
    for f in files:
        try:
            with np.load(f, allow_pickle=False) as z:
                x, y = np.asarray(z["x"], np.float32), np.asarray(z["y"], np.float32)
        except (OSError, KeyError, ValueError) as exc:
            raise InputError(f"{f}: not a toy case ({exc}).") from None
        if x.ndim != 2 or x.shape[1] != N_FEATURES or y.shape != (x.shape[0],):
            raise InputError(f"{f}: expected x [n, {N_FEATURES}] and y [n].")
        xs.append(x)
        ys.append(y)
    return torch.from_numpy(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys))


TOY_MODEL_PREFIX = "toy-mlp-"


def toy_network(hidden: int) -> nn.Module:
    """The toy model (model id ``toy-mlp-8x<hidden>``): two layers, tanh between."""
    return nn.Sequential(nn.Linear(N_FEATURES, hidden), nn.Tanh(), nn.Linear(hidden, 1))


class ToyTrainer:
    def __init__(
        self,
        data_dir: Path,
        hidden: int = 16,
        lr: float = 1e-2,
        batch_size: int = 32,
        synthetic_seed: int | None = None,
    ) -> None:
        """Cases from ``data_dir/*.npz``; with ``synthetic_seed`` and no such files,
        synthetic cases made in memory (nothing is written)."""
        self.data_dir = Path(data_dir)
        self.hidden, self.lr, self.batch_size = hidden, lr, batch_size
        self.model_id = f"{TOY_MODEL_PREFIX}{N_FEATURES}x{hidden}"
        x, y = _load_cases(self.data_dir, synthetic_seed)
        perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
        n_val = max(1, len(x) // 5)  # the site's own validation split, fixed
        self.x_val, self.y_val = x[perm[:n_val]], y[perm[:n_val]]
        self.x_train, self.y_train = x[perm[n_val:]], y[perm[n_val:]]

    def build(self, seed: int) -> nn.Module:
        torch.manual_seed(seed)
        return toy_network(self.hidden)

    def train_turn(self, inp: TurnInput, token: CancelToken) -> Generator[Progress, None, TurnResult]:
        model = self.build(inp.seed)
        if inp.weights is not None:
            try:
                model.load_state_dict(inp.weights)
            except RuntimeError as exc:
                raise InputError(f"The ring's weights do not fit the toy model: {exc}") from None
        opt = torch.optim.Adam(model.parameters(), lr=self.lr)
        if inp.optimizer_state is not None:
            load_site_optimizer_state(opt, model, inp.optimizer_state)
        loss_fn = nn.MSELoss()
        gen = torch.Generator().manual_seed(inp.seed * 100_003 + inp.turn)
        n = len(self.x_train)
        n_batches = (n + self.batch_size - 1) // self.batch_size
        clock = EtaClock()
        train_loss = 0.0
        for epoch in range(inp.epochs):
            model.train()
            order = torch.randperm(n, generator=gen)
            total = 0.0
            for b in range(n_batches):
                token.raise_if_cancelled()
                idx = order[b * self.batch_size : (b + 1) * self.batch_size]
                opt.zero_grad()
                loss = loss_fn(model(self.x_train[idx]).squeeze(1), self.y_train[idx])
                loss.backward()
                opt.step()
                total += loss.item() * len(idx)
                done = epoch * n_batches + b + 1
                yield Progress(
                    f"Epoch {epoch + 1}/{inp.epochs}",
                    done=done,
                    total=inp.epochs * n_batches,
                    eta_s=clock.eta(done, inp.epochs * n_batches),
                )
            train_loss = total / n
        model.eval()
        with torch.no_grad():
            val_loss = float(loss_fn(model(self.x_val).squeeze(1), self.y_val))
        return TurnResult(
            weights=model.state_dict(),
            optimizer_state=opt.state_dict(),
            metrics={"train_loss": train_loss, "val_loss": val_loss},
            n_examples=n,
        )
