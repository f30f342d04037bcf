"""Training: loss, patches, settings, the epoch trainer and checkpoints.

- :mod:`.trainer` is ring-agnostic: ``EpochTrainer.train_epochs(state, k, token)``
  runs k epochs from given weights (+ optional Adam state) and returns the new
  state and per-epoch metrics (losses and patch counts, no identifiers);
  :func:`.trainer.fit` trains to convergence on top of it.
- :mod:`.site_data` turns a site's CT + mask pairs into patches (hematoma-specific).
- :mod:`.run` is ``hemarelay train``: patches, fit, checkpoints, weights file.
"""

from .checkpoint import load_checkpoint, optimizer_from_tensors, optimizer_to_tensors, save_checkpoint
from .config import TrainingConfig, load_config
from .loss import continuous_dice, get_loss, soft_dice
from .patches import PatchSet, extract_patches, split_patches
from .trainer import EpochMetrics, EpochsResult, EpochTrainer, FitResult, PatchData, TrainingProgress, TrainState, fit

__all__ = [
    "load_checkpoint",
    "optimizer_from_tensors",
    "optimizer_to_tensors",
    "save_checkpoint",
    "TrainingConfig",
    "load_config",
    "continuous_dice",
    "get_loss",
    "soft_dice",
    "PatchSet",
    "extract_patches",
    "split_patches",
    "EpochMetrics",
    "EpochTrainer",
    "FitResult",
    "PatchData",
    "TrainingProgress",
    "TrainState",
    "EpochsResult",
    "fit",
]
