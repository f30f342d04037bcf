"""Checkpoints and optimizer-state transport, as safetensors + JSON (no pickle).

A checkpoint holds a :class:`TrainState` (current and best weights, Adam's
moment estimates and step counts, epoch, convergence bookkeeping, history)
and the settings it was trained with, so ``hemarelay train`` resumes exactly
where an interrupted run stopped. :func:`optimizer_to_tensors` and
:func:`optimizer_from_tensors` are also what a ring turn uses to ship Adam's
state with the weights.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from ..errors import InputError
from ..io.atomic import atomic_path
from .trainer import EpochMetrics, TrainState

FORMAT = "hemarelay-checkpoint"
FORMAT_VERSION = 1


def optimizer_to_tensors(opt_state: dict, prefix: str = "optim.") -> tuple[dict[str, torch.Tensor], dict]:
    """Split a torch optimizer state_dict into tensors and a JSON-able rest."""
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict] = {}
    for pid, per_param in opt_state["state"].items():
        for key, value in per_param.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{prefix}{pid}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(pid), {})[key] = value
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in opt_state["param_groups"]]
    return tensors, {"param_groups": groups, "scalars": scalars, "prefix": prefix}


def optimizer_from_tensors(tensors: dict[str, torch.Tensor], info: dict) -> dict:
    prefix = info.get("prefix", "optim.")
    state: dict[int, dict] = {}
    for name, value in tensors.items():
        if not name.startswith(prefix):
            continue
        pid, _, key = name[len(prefix) :].partition(".")
        state.setdefault(int(pid), {})[key] = value.clone()
    for pid, values in info.get("scalars", {}).items():
        state.setdefault(int(pid), {}).update(values)
    groups = [{k: (tuple(v) if k == "betas" else v) for k, v in g.items()} for g in info["param_groups"]]
    return {"state": state, "param_groups": groups}


def _finite_or_none(x: float) -> float | None:
    return x if math.isfinite(x) else None


def save_checkpoint(path: str | Path, state: TrainState, config: dict) -> Path:
    path = Path(path)
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in state.weights.items()}
    if state.best_weights is not None:
        tensors |= {f"best.{k}": v.detach().cpu().contiguous() for k, v in state.best_weights.items()}
    opt_info = None
    if state.optimizer is not None:
        opt_tensors, opt_info = optimizer_to_tensors(state.optimizer)
        tensors |= opt_tensors
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": config,
        "epoch": state.epoch,
        "best_val_loss": _finite_or_none(state.best_val_loss),
        "best_epoch": state.best_epoch,
        "patience_ref": _finite_or_none(state.patience_ref),
        "epochs_since_improvement": state.epochs_since_improvement,
        "history": [m.to_dict() for m in state.history],
        "optimizer": opt_info,
    }
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"hemarelay": json.dumps(meta)})
    return path


def load_checkpoint(path: str | Path) -> tuple[TrainState, dict]:
    """(state, config dict) from a checkpoint written by :func:`save_checkpoint`."""
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {})["hemarelay"])
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except FileNotFoundError:
        raise InputError(f"{path}: checkpoint not found.") from None
    except Exception as exc:  # noqa: BLE001 - safetensors and torch raise many types for a bad file
        raise InputError(f"{path}: not a readable checkpoint ({exc}); remove it to start afresh.") from None
    if meta.get("format") != FORMAT or meta.get("format_version") != FORMAT_VERSION:
        raise InputError(f"{path}: not a checkpoint of this program version; remove it to start afresh.")

    def part(prefix: str) -> dict[str, torch.Tensor]:
        return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}

    best = part("best.")
    inf = math.inf
    state = TrainState(
        weights=part("model."),
        optimizer=optimizer_from_tensors(tensors, meta["optimizer"]) if meta["optimizer"] else None,
        epoch=int(meta["epoch"]),
        best_val_loss=inf if meta["best_val_loss"] is None else float(meta["best_val_loss"]),
        best_epoch=int(meta["best_epoch"]),
        best_weights=best or None,
        patience_ref=inf if meta["patience_ref"] is None else float(meta["patience_ref"]),
        epochs_since_improvement=int(meta["epochs_since_improvement"]),
        history=[EpochMetrics(**m) for m in meta["history"]],
    )
    return state, meta["config"]
