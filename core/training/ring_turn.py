"""The hematoma trainer as a ring participant (cyclic weight transfer).

:class:`HematomaTurnTrainer` adapts the ring-agnostic :class:`EpochTrainer` to
the ring's :class:`core.ring.trainer.TurnTrainer` protocol: weights arrive
from the previous site, this site trains ``k`` epochs on its own approved
cases, and only weights, Adam state and scalar losses go back. Patches are
built once per process and reused for every turn this site takes.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Generator

from ..errors import InputError
from ..model.architectures import ARCHITECTURES, guidance_channels, input_channels
from ..model.input import InputConvention
from ..progress import CancelToken, Progress
from ..ring.trainer import TurnInput, TurnResult
from .config import TrainingConfig
from .run import make_trainer, training_cases
from .site_data import DataSummary, build_patch_data
from .trainer import EpochTrainer, TrainState


class HematomaTurnTrainer:
    def __init__(
        self, site_dir: str | Path, config: TrainingConfig, convention: InputConvention | None = None, cases=None
    ) -> None:
        self.site_dir = Path(site_dir)
        self.config = config
        self.convention = convention or config.input_convention()
        self.model_id = model_id_for(config.architecture, config.ds, self.convention)
        self._cases = cases
        self._trainer: EpochTrainer | None = None
        self.summary: DataSummary | None = None

    def _prepare(self, token: CancelToken) -> Generator[Progress, None, EpochTrainer]:
        if self._trainer is None:
            if self._cases is not None:  # the desktop application's approved cases
                cases, normals = list(self._cases), []
                if not cases:
                    raise InputError(f"{self.site_dir}: no approved cases for this site's turn.")
            else:  # the site folder: train/ (and normal/ when the settings use it)
                cases, normals = training_cases([self.site_dir], self.config)
            data, self.summary = yield from build_patch_data(cases, self.config, self.convention, token, normals)
            self._trainer = make_trainer(self.config, data)
        return self._trainer

    def _default_weights(self) -> dict:
        """The shipped default model, for a ring started with ``--start-from default``."""
        from ..model.default import load_default_model

        loaded = load_default_model()
        shipped = model_id_for(loaded.meta.architecture, loaded.meta.ds, loaded.meta.input)
        if shipped != self.model_id or loaded.meta.input != self.convention:
            raise InputError(
                f"This ring starts from the default model ({shipped}), but this site "
                f"trains {self.model_id}; train with --preset default."
            )
        return {k: v.clone() for k, v in loaded.state_dict.items()}

    def train_turn(self, inp: TurnInput, token: CancelToken) -> Generator[Progress, None, TurnResult]:
        trainer = yield from self._prepare(token)
        if inp.weights is None and inp.start_from == "default":
            weights = self._default_weights()
        elif inp.weights is None:  # the ring's first turn: every site initialises alike
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
                raise InputError(
                    f"The ring's weights do not fit this site's network "
                    f"({self.model_id}): {str(exc).splitlines()[0][:200]}"
                ) from None
            raise
        last = result.epochs[-1]
        metrics = {"train_loss": float(last.train_loss), "val_loss": float(last.val_loss)}
        return TurnResult(result.state.weights, result.state.optimizer, metrics, int(last.n_train))


# "<architecture>-ds<N>[-<grid>mm][-clicks<sigma>mm]"; the architecture is any of
# core.model.architectures (a new one is covered as soon as it is registered)
_MODEL_ID = (
    "("
    + "|".join(re.escape(a) for a in ARCHITECTURES)
    + r")-ds(\d+)(?:-(\d+(?:\.\d+)?)mm)?(?:-clicks(\d+(?:\.\d+)?)mm)?"
)


def model_id_for(architecture: str, ds: int, convention: InputConvention) -> str:
    """The ring's name for a network and its input grid: ``inception-ds4``,
    ``unet25d-ds2-0.8mm``, ``unet25d-click-ds4-0.8mm-clicks5mm`` (the network
    that also takes clicks, with the width of their Gaussian); sites must agree
    on all of it to share weights."""
    grid = f"-{convention.in_plane_mm:g}mm" if convention.in_plane_mm > 0 else ""
    clicks = f"-clicks{convention.click_sigma_mm:g}mm" if convention.click_sigma_mm > 0 else ""
    return f"{architecture}-ds{ds}{grid}{clicks}"


def convention_for(model_id: str) -> InputConvention:
    m = re.fullmatch(_MODEL_ID, model_id or "")
    if not m:
        raise InputError(f"The ring's model '{model_id}' is not a hematoma network.")
    context = (input_channels(m.group(1)) - 1) // 2
    sigma = float(m.group(4) or 0.0)
    if (sigma > 0) != (guidance_channels(m.group(1)) > 0):
        raise InputError(f"The ring's model '{model_id}' names a click width for a network without clicks, or none.")
    return InputConvention(in_plane_mm=float(m.group(3) or 0.0), context_slices=context, click_sigma_mm=sigma)


def is_hematoma_model(model_id: str | None) -> bool:
    return bool(re.fullmatch(_MODEL_ID, model_id or ""))


def network_of(model_id: str | None) -> tuple[str, int] | None:
    """The architecture and ds a ring's model id names (None: not a hematoma network)."""
    m = re.fullmatch(_MODEL_ID, model_id or "")
    return (m.group(1), int(m.group(2))) if m else None


def save_ring_weights_as_model(
    tensors: dict,
    model_id: str,
    out_path: str | Path,
    *,
    version: str,
    metrics: dict | None = None,
    convention: InputConvention | None = None,
    source: dict | None = None,
) -> Path:
    """Write ring weights as a model weights file that ``predict``/``evaluate`` load.

    ``model_id`` is the ring's (``inception-ds4``): it gives architecture and ds.
    ``source`` is the provenance recorded as the file's training summary (the SSH
    ring by default; core/flare names the NVFlare job, round and site).
    """
    from ..model.weights import WeightsMeta, save_weights

    m = re.fullmatch(_MODEL_ID, model_id or "")
    if not m:
        raise InputError(
            f"The ring's model '{model_id}' is not a hematoma network; its weights cannot be used for prediction."
        )
    meta = WeightsMeta(
        architecture=m.group(1),
        ds=int(m.group(2)),
        input=convention or convention_for(model_id),
        preset="ring",
        metrics=dict(metrics or {}),
        version=version,
        training=source or {"source": "cyclic weight transfer ring"},
    )
    save_weights(out_path, tensors, meta)
    return Path(out_path)
