"""What the ring needs from a trainer: any epoch-based torch trainer can take a turn.

The ring hands a trainer the current weights (and optimizer state), the trainer
trains ``epochs`` epochs on the site's own data, validates on the site's own
validation split, and returns new weights, optimizer state and scalar metrics.
The ring never sees the data, only what :class:`TurnResult` carries, and that is
all that goes to the server.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Generator, Protocol, runtime_checkable

import torch

from ..errors import HemaRelayError
from ..progress import CancelToken, Progress
from .manifest import METRIC_RE

OptimizerState = dict[str, Any]  # torch ``optimizer.state_dict()``


@dataclass(frozen=True)
class NetworkShapes:
    """The tensors of the network a ring trains, as a model id names it: what weights
    and optimizer files may hold (``ring audit``, the NVFlare server's result check).
    Given from above the ring (:func:`core.turn_trainers.network_shapes`)."""

    model_id: str
    weights: dict[str, tuple[int, ...]]  # state_dict names and shapes
    parameters: tuple[tuple[int, ...], ...]  # parameter shapes, in the optimizer's order


@dataclass(frozen=True)
class TurnInput:
    weights: dict[str, torch.Tensor] | None  # None: the ring's first turn, initialise the model
    optimizer_state: OptimizerState | None  # None: start a fresh optimizer
    epochs: int
    seed: int  # the ring's seed: use it to initialise the model on the first turn
    turn: int  # 0-based ring turn index (e.g. to vary data shuffling per turn)
    site: str
    start_from: str = "scratch"  # first turn: "scratch" (from seed) or "default" (the shipped model)


@dataclass(frozen=True)
class TurnResult:
    weights: dict[str, torch.Tensor]
    optimizer_state: OptimizerState | None
    metrics: dict[str, float]  # scalars only; must contain "val_loss" (drives convergence)
    n_examples: int  # training examples seen per epoch (a count, nothing more)


@runtime_checkable
class TurnTrainer(Protocol):
    """One site's trainer. ``model_id`` names the architecture and its settings
    (e.g. "inception-ds4"); a ring refuses a trainer whose id differs from the
    one that started it."""

    model_id: str

    def train_turn(self, inp: TurnInput, token: CancelToken) -> Generator[Progress, None, TurnResult]:
        """Train ``inp.epochs`` epochs, yielding progress often (the ring renews its
        lease between events, so never go longer than a minute without one)."""
        ...


def check_result(result: Any, model_id: str) -> TurnResult:
    """Refuse a trainer result that could carry more than weights and scalars."""
    if not isinstance(result, TurnResult):
        raise TypeError(f"trainer {model_id} returned {type(result).__name__}, not TurnResult")
    if not result.weights or not all(isinstance(v, torch.Tensor) for v in result.weights.values()):
        raise TypeError(f"trainer {model_id}: weights must be a non-empty dict of tensors")
    if "val_loss" not in result.metrics:
        raise TypeError(f"trainer {model_id}: metrics lack 'val_loss'")
    for k, v in result.metrics.items():
        if not METRIC_RE.match(k):
            raise TypeError(f"trainer {model_id}: metric name {k!r} must match {METRIC_RE.pattern}")
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise TypeError(f"trainer {model_id}: metric {k} = {v!r} is not a number")
        if not math.isfinite(float(v)):
            raise HemaRelayError(
                f"Training diverged on this site ({k} = {v}); nothing was published and the ring is unchanged."
            )
    if isinstance(result.n_examples, bool) or not isinstance(result.n_examples, int) or result.n_examples < 0:
        raise TypeError(f"trainer {model_id}: n_examples must be a count")
    return result


def load_site_optimizer_state(opt: torch.optim.Optimizer, net: torch.nn.Module, state: OptimizerState) -> None:
    """Load optimizer state that came through the ring, keeping this site's own
    hyper-parameters: the site decides its rate, betas, eps, weight decay and
    ``maximize`` (a crafted state could otherwise turn training into gradient
    ascent or an inversion probe); only moments and step counts travel."""
    from ..errors import InputError

    local = {k: v for k, v in opt.defaults.items() if k != "params"}
    try:
        opt.load_state_dict(state)
    except (ValueError, KeyError, TypeError, RuntimeError, IndexError) as exc:
        raise InputError(
            f"The ring's optimizer state does not fit this site's network: {str(exc).splitlines()[0][:200]}"
        ) from None
    for group in opt.param_groups:
        group.update(local)
    for p in net.parameters():
        for name, value in opt.state.get(p, {}).items():
            if name != "step" and isinstance(value, torch.Tensor) and value.shape != p.shape:
                raise InputError(
                    f"The ring's optimizer state does not fit this site's network "
                    f"({name} of shape {tuple(value.shape)} for a weight of shape "
                    f"{tuple(p.shape)})."
                )
