"""The hematoma trainer as a ring participant (cyclic weight transfer).

:class:`HematomaTurnTrainer` adapts the ring-agnostic :class:`EpochTrainer` to
the ring's :class:`core.ring.trainer.TurnTrainer` protocol: weights arrive
from the previous site, this site trains ``k`` epochs on its own approved
cases, and only weights, Adam state and scalar losses go back. Patches are
built once per process and reused for every turn this site takes.
"""
from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Generator

from ..datasets import site_split
from ..errors import InputError
from ..model.input import DEFAULT_INPUT, InputConvention
from ..progress import CancelToken, Progress
from ..ring.trainer import TurnInput, TurnResult
from .config import TrainingConfig, load_config
from .run import make_trainer
from .site_data import DataSummary, build_patch_data
from .trainer import EpochTrainer, TrainState


class HematomaTurnTrainer:
    def __init__(self, site_dir: str | Path, config: TrainingConfig,
                 convention: InputConvention = DEFAULT_INPUT, cases=None) -> None:
        self.site_dir = Path(site_dir)
        self.config = config
        self.convention = convention
        self.model_id = f"{config.architecture}-ds{config.ds}"
        self._cases = cases
        self._trainer: EpochTrainer | None = None
        self.summary: DataSummary | None = None

    def _prepare(self, token: CancelToken) -> Generator[Progress, None, EpochTrainer]:
        if self._trainer is None:
            cases = self._cases if self._cases is not None else site_split(self.site_dir, "train",
                                                                           require_masks=True)
            if not cases:
                raise InputError(f"{self.site_dir}: no train/ cases (ct_NNN + mask_NNN) for this "
                                 "site's turn.")
            data, self.summary = yield from build_patch_data(cases, self.config, self.convention, token)
            self._trainer = make_trainer(self.config, data)
        return self._trainer

    def train_turn(self, inp: TurnInput, token: CancelToken) -> Generator[Progress, None, TurnResult]:
        trainer = yield from self._prepare(token)
        if inp.weights is None:  # the ring's first turn: every site initialises alike
            trainer = make_trainer(self.config.replace(seed=inp.seed), trainer.data)
            self._trainer = trainer
            weights = trainer.initial_state().weights
        else:
            weights = inp.weights
        state = TrainState(weights=weights, optimizer=inp.optimizer_state, epoch=inp.turn * inp.epochs)
        try:
            result = yield from trainer.train_epochs(state, inp.epochs, token)
        except (RuntimeError, KeyError) as exc:
            if "state_dict" in str(exc) or "size mismatch" in str(exc) or isinstance(exc, KeyError):
                raise InputError(f"The ring's weights do not fit this site's network "
                                 f"({self.model_id}): {str(exc).splitlines()[0][:200]}") from None
            raise
        last = result.epochs[-1]
        metrics = {"train_loss": float(last.train_loss), "val_loss": float(last.val_loss)}
        return TurnResult(result.state.weights, result.state.optimizer, metrics, int(last.n_train))


def make_turn_trainer(args: argparse.Namespace) -> HematomaTurnTrainer:
    """Build from ``hemarelay ring turn`` arguments (--preset, --config, --set)."""
    config = load_config(getattr(args, "preset", None) or "cpu-small", getattr(args, "config", None),
                         getattr(args, "set", None) or [])
    return HematomaTurnTrainer(Path(args.data), config)


_MODEL_ID = r"(inception|unet)-ds(\d+)"


def is_hematoma_model(model_id: str | None) -> bool:
    return bool(re.fullmatch(_MODEL_ID, model_id or ""))


def save_ring_weights_as_model(tensors: dict, model_id: str, out_path: str | Path, *, version: str,
                               metrics: dict | None = None, convention: InputConvention = DEFAULT_INPUT
                               ) -> Path:
    """Write ring weights as a model weights file that ``predict``/``evaluate`` load.

    ``model_id`` is the ring's (``inception-ds4``): it gives architecture and ds.
    """
    from ..model.weights import WeightsMeta, save_weights

    m = re.fullmatch(_MODEL_ID, model_id or "")
    if not m:
        raise InputError(f"The ring's model '{model_id}' is not a hematoma network; "
                         "its weights cannot be used for prediction.")
    meta = WeightsMeta(architecture=m.group(1), ds=int(m.group(2)), input=convention,
                       preset="ring", metrics=dict(metrics or {}), version=version,
                       training={"source": "cyclic weight transfer ring"})
    save_weights(out_path, tensors, meta)
    return Path(out_path)
