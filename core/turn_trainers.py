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
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError
from .ring.errors import TrainerUnavailableError
from .ring.trainer import NetworkShapes, TurnTrainer

_TOY_ID = re.compile(r"^toy-mlp-(?P<features>\d{1,4})x(?P<hidden>\d{1,6})$")


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


def network_shapes(model_id: str) -> NetworkShapes | None:
    """The names and shapes of the network a ring's model id names (None: one this program
    does not know): any architecture of :data:`core.model.architectures.ARCHITECTURES`
    (so a new one is covered as soon as it is registered), or the toy model."""
    from torch import nn

    net: nn.Module
    toy = _TOY_ID.match(model_id or "")
    if toy:
        from .ring.toy import N_FEATURES, toy_network

        if int(toy.group("features")) != N_FEATURES:
            return None
        net = toy_network(int(toy.group("hidden")))
    else:
        from .model.architectures import build_network
        from .training.ring_turn import network_of  # the one reading of a ring's model id

        named = network_of(model_id)
        if named is None:
            return None
        net = build_network(*named)
    return NetworkShapes(
        model_id,
        {k: tuple(v.shape) for k, v in net.state_dict().items()},
        tuple(tuple(p.shape) for p in net.parameters()),
    )
