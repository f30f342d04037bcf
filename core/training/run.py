"""``hemarelay train``: a site folder in, a weights file out, resumable.

The output folder holds ``checkpoint.safetensors`` (rewritten after every
epoch; an interrupted or cancelled run started again with the same folder and
settings continues from it) and, at the end, ``model.safetensors``: the best
weights (lowest validation loss) with their metadata.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Generator, Sequence

from ..cases.datasets import Case, site_split
from ..errors import ConfigError, InputError
from ..model.architectures import build_network
from ..model.input import InputConvention
from ..model.weights import WeightsMeta, load_weights, save_weights
from ..progress import NEVER_CANCELLED, CancelToken, Progress
from .checkpoint import load_checkpoint, save_checkpoint
from .clicks import ClickTraining
from .config import TrainingConfig
from .loss import get_loss
from .site_data import build_patch_data
from .trainer import EpochTrainer, TrainState, fit

log = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.safetensors"
MODEL_NAME = "model.safetensors"
# Settings that may change between an interrupted run and its resumption.
_RESUMABLE_CHANGES = {"threads", "max_epochs", "patience"}


@dataclass(frozen=True)
class TrainRunResult:
    weights_path: Path
    meta: WeightsMeta
    stopped: str  # "converged" or "max_epochs"
    resumed_from_epoch: int


def make_trainer(config: TrainingConfig, data) -> EpochTrainer:
    return EpochTrainer(
        lambda: build_network(config.architecture, config.ds),
        get_loss(config.loss, config.bce_weight),
        data,
        batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        seed=config.seed,
        min_delta=config.min_delta,
        threads=config.threads,
        augment=config.augment,
        rotate_degrees=config.rotate_degrees,  # applied only with augment (EpochTrainer._batches)
        scale_jitter=config.scale_jitter,
        lr_schedule=config.lr_schedule,
        schedule_epochs=config.max_epochs,
        clicks=click_training(config),
    )


def click_training(config: TrainingConfig) -> ClickTraining | None:
    """How this recipe simulates clicks (None: the network takes no clicks)."""
    if config.click_sigma_mm <= 0:
        return None
    return ClickTraining(
        sigma_mm=config.click_sigma_mm,
        free_fraction=config.click_free_fraction,
        iterations=config.click_iterations,
        random=config.click_random,
        background_hu=config.input_convention().background_hu,
    )


def _check_resumable(saved: dict, config: TrainingConfig, path: Path) -> None:
    now = config.to_dict()
    # a setting added after the run was saved held its default then
    saved = {f.name: f.default for f in fields(TrainingConfig)} | saved
    diff = [k for k in sorted(set(saved) | set(now)) if k not in _RESUMABLE_CHANGES and saved.get(k) != now.get(k)]
    if diff:
        what = ", ".join(f"{k}: {saved.get(k)!r} -> {now.get(k)!r}" for k in diff[:4])
        raise ConfigError(
            f"{path} belongs to a run with other settings ({what}); use a new "
            "output folder, or --fresh to discard that run."
        )


def training_cases(site_dirs: Sequence[str | Path], config: TrainingConfig) -> tuple[list[Case], list[Case]]:
    """(cases with masks from each ``SITE/train``, scans from each ``SITE/normal``).

    Normal scans are read only when the settings use them, at most
    ``normal_volumes`` per site (the first by name; 0 = all), so that a site
    can keep some of its normal scans to check false positives on.
    """
    cases: list[Case] = []
    normals: list[Case] = []
    for site in site_dirs:
        site = Path(site)
        found = site_split(site, "train", require_masks=True)
        if not found:
            raise InputError(f"{site}: no train/ folder with ct_NNN.nii.gz + mask_NNN.nii.gz pairs.")
        cases += found
        if config.normal_patches_per_volume > 0:
            extra = site_split(site, "normal")
            normals += extra[: config.normal_volumes] if config.normal_volumes else extra
    return cases, normals


def train_site(
    site_dir: str | Path | Sequence[str | Path],
    out_dir: str | Path,
    config: TrainingConfig,
    token: CancelToken = NEVER_CANCELLED,
    fresh: bool = False,
    init_weights: str | Path | None = None,
    convention: InputConvention | None = None,
    cases: tuple[Sequence[Case], Sequence[Case]] | None = None,
) -> Generator[Progress, None, TrainRunResult]:
    """Train on one site folder, or on several (their train/ cases pooled), or on
    ``cases``: (cases with masks, normal scans) chosen by the caller (a
    cross-validation fold)."""
    sites = [site_dir] if isinstance(site_dir, (str, Path)) else list(site_dir)
    out_dir = Path(out_dir)
    convention = convention or config.input_convention()
    if cases is None:
        cases = training_cases(sites, config)
    cases, normals = list(cases[0]), list(cases[1])
    ckpt_path = out_dir / CHECKPOINT_NAME
    state: TrainState | None = None
    parent = None
    if init_weights is not None:
        init = load_weights(init_weights, expect_architecture=config.architecture)
        if init.meta.ds != config.ds or init.meta.input != convention:
            raise ConfigError(f"{init_weights}: ds or input convention differ from these settings.")
        parent = init.meta.sha256
    if ckpt_path.exists() and not fresh:
        state, saved = load_checkpoint(ckpt_path)
        _check_resumable(saved.get("config", {}), config, ckpt_path)
        parent = saved.get("parent_sha256")
        log.info("resuming %s at epoch %d", ckpt_path, state.epoch)
    data, summary = yield from build_patch_data(cases, config, convention, token, normals)
    trainer = make_trainer(config, data)
    resumed_from = state.epoch if state is not None else 0
    if state is None:
        state = trainer.initial_state()
        if init_weights is not None:
            state.weights = {k: v.clone() for k, v in init.state_dict.items()}
    saved_config = {"config": config.to_dict(), "parent_sha256": parent}

    def checkpoint(st: TrainState) -> None:
        save_checkpoint(ckpt_path, st, saved_config)

    out_dir.mkdir(parents=True, exist_ok=True)
    result = yield from fit(trainer, state, config.patience, config.max_epochs, token, checkpoint)
    st = result.state
    if config.keep_weights == "last" or not st.best_epoch:
        best, kept_epoch = st.weights, st.epoch
    else:
        best, kept_epoch = st.best_weights or st.weights, st.best_epoch
    best_metrics = st.history[kept_epoch - 1]
    meta = WeightsMeta(
        architecture=config.architecture,
        ds=config.ds,
        input=convention,
        preset=config.preset,
        training={
            "config": config.to_dict(),
            "data": summary.to_dict(),
            "epochs": st.epoch,
            "best_epoch": st.best_epoch,
            "kept_epoch": kept_epoch,
            "stopped": result.stopped,
            "history": [
                {"epoch": m.epoch, "train_loss": m.train_loss, "val_loss": m.val_loss, "seconds": round(m.seconds, 2)}
                for m in st.history
            ],
        },
        metrics={"val_loss": best_metrics.val_loss, "train_loss": best_metrics.train_loss, "loss": config.loss},
        parent_sha256=parent,
        version=f"{config.preset or 'custom'} epoch {kept_epoch}",
    )
    path = out_dir / MODEL_NAME
    meta = save_weights(path, best, meta)
    yield Progress(
        "Training finished",
        st.epoch,
        st.epoch,
        f"{result.stopped} after {st.epoch} epochs; kept epoch {kept_epoch} "
        f"(validation loss {best_metrics.val_loss:.4f}; best {st.best_val_loss:.4f} at epoch {st.best_epoch})",
        0.0,
    )
    return TrainRunResult(path, meta, result.stopped, resumed_from)
