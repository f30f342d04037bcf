"""Which trainer takes this site's ring turns: the one place the ring meets a model.

The ring (:mod:`core.ring`) knows only the :class:`~core.ring.trainer.TurnTrainer`
protocol; this module, above both the ring and :mod:`core.training`, picks one:

- ``hematoma`` (the default): :class:`core.training.ring_turn.HematomaTurnTrainer`
  with the preset, settings file and ``key=value`` overrides given;
- ``toy``: the tiny built-in trainer (on the folder's ``*.npz`` toy cases, or
  synthetic data when there are none: a check of the ring's connections
  without medical data);
- ``package.module:function``: any other factory, called with the
  :class:`TrainerChoice` itself.
"""

from __future__ import annotations

import importlib
import zlib
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError
from .ring.errors import TrainerUnavailableError
from .ring.trainer import TurnTrainer


@dataclass(frozen=True)
class TrainerChoice:
    """Plain values that say which trainer to build and on what."""

    data: Path  # this site's data folder
    spec: str = "hematoma"  # hematoma | toy | package.module:function
    site: str = ""  # seeds the toy trainer's synthetic data (each site its own)
    preset: str | None = None  # hematoma: a preset name or TOML file (None: the default preset)
    config: Path | None = None  # hematoma: a settings file over the preset
    overrides: tuple[str, ...] = ()  # hematoma: key=value settings over both


def make_turn_trainer(choice: TrainerChoice) -> TurnTrainer:
    spec = choice.spec or "hematoma"
    if spec == "toy":
        from .ring.toy import ToyTrainer

        return ToyTrainer(Path(choice.data), synthetic_seed=zlib.crc32(choice.site.encode()) % 1000)
    if spec == "hematoma":
        from .training.config import load_config
        from .training.ring_turn import HematomaTurnTrainer

        config = load_config(choice.preset, choice.config, list(choice.overrides))
        trainer: object = HematomaTurnTrainer(Path(choice.data), config)
    else:
        module_name, _, func_name = spec.partition(":")
        if not module_name or not func_name:
            raise ConfigError(f"Trainer '{spec}': use hematoma, toy or package.module:function.")
        try:
            make = getattr(importlib.import_module(module_name), func_name)
        except (ImportError, AttributeError) as exc:
            raise TrainerUnavailableError(f"Trainer '{spec}' cannot be loaded: {exc}.") from None
        trainer = make(choice)
    if not isinstance(trainer, TurnTrainer):
        raise TrainerUnavailableError(
            f"Trainer '{spec}' did not return a ring trainer (model_id and train_turn are required)."
        )
    return trainer
