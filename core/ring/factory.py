"""Which trainer takes this site's turns: the single place the ring meets a model.

``--trainer hematoma`` (the default) asks :mod:`core.training` for its turn
trainer (``core.training.make_turn_trainer(args)``), ``--trainer toy`` is the
tiny built-in one (on the folder's ``*.npz`` toy cases, or synthetic data when
there are none: a check of the ring's connections without medical data),
``--trainer package.module:function`` any other factory taking the parsed
command-line arguments.
"""
from __future__ import annotations

import argparse
import importlib
from pathlib import Path

from ..errors import ConfigError
from .errors import TrainerUnavailableError
from .trainer import TurnTrainer


def trainer_factory(args: argparse.Namespace) -> TurnTrainer:
    spec = getattr(args, "trainer", None) or "hematoma"
    if spec == "toy":
        import zlib

        from .toy import ToyTrainer
        site_seed = zlib.crc32(str(getattr(args, "site", "")).encode()) % 1000
        return ToyTrainer(Path(args.data), synthetic_seed=site_seed)
    if spec == "hematoma":
        try:
            training = importlib.import_module("core.training")
        except ModuleNotFoundError as exc:
            if exc.name not in ("core.training",):
                raise
            raise TrainerUnavailableError(
                "The hematoma trainer is not available in this installation (core.training is "
                "missing); a ring turn needs it.") from None
        make = getattr(training, "make_turn_trainer", None)
        if make is None:
            raise TrainerUnavailableError(
                "The hematoma trainer (core.training) does not offer ring turns yet "
                "(make_turn_trainer is missing).")
        trainer = make(args)
    else:
        module_name, _, func_name = spec.partition(":")
        if not module_name or not func_name:
            raise ConfigError(f"Trainer '{spec}': use hematoma, toy or package.module:function.")
        try:
            make = getattr(importlib.import_module(module_name), func_name)
        except (ImportError, AttributeError) as exc:
            raise TrainerUnavailableError(f"Trainer '{spec}' cannot be loaded: {exc}.") from None
        trainer = make(args)
    if not isinstance(trainer, TurnTrainer):
        raise TrainerUnavailableError(f"Trainer '{spec}' did not return a ring trainer "
                                      f"(model_id and train_turn are required).")
    return trainer
