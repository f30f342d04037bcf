"""Weights and optimizer state as bytes for the server: safetensors, never pickle.

Files on the ring server come from other sites and are untrusted: safetensors
holds only named tensors plus a string-to-string header, so reading one cannot
run code. A torch optimizer ``state_dict()`` is split into its tensors (named
``state.<param index>.<name>``) and its scalars and ``param_groups`` (JSON in
the header under ``hemarelay.optimizer``), and rebuilt on load.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from .errors import CorruptWeightsError

WEIGHTS_FORMAT = "hemarelay-weights/1"
OPTIMIZER_FORMAT = "hemarelay-optimizer/1"
OPTIMIZER_JSON_KEY = "hemarelay.optimizer"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _plain(t: torch.Tensor) -> torch.Tensor:
    # safetensors refuses views that share storage: give it compact CPU copies.
    return t.detach().to("cpu").contiguous().clone()


def encode_weights(state: dict[str, torch.Tensor], meta: dict[str, str]) -> bytes:
    """A model ``state_dict`` (tensors only) as safetensors bytes with ``meta`` in the header."""
    bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise TypeError(f"weights must be tensors only; not tensors: {bad[:5]}")
    header = {"format": WEIGHTS_FORMAT, **_checked_meta(meta)}
    return st_save({k: _plain(v) for k, v in state.items()}, metadata=header)


META_KEYS = ("ring_id", "version", "site", "turn", "model_id")  # all a weights file may say
_META_VALUE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def _checked_meta(meta: dict[str, str]) -> dict[str, str]:
    """The upload's header from an allow-list: known keys, short plain values (never a
    path, a case name or free text), checked when the file is made."""
    out = {}
    for k, v in meta.items():
        if k not in META_KEYS or not _META_VALUE.match(str(v)):
            raise ValueError(f"weights metadata {k!r}={str(v)[:40]!r} is not allowed on the ring server")
        out[k] = str(v)
    return out


def decode_weights(data: bytes, what: str) -> dict[str, torch.Tensor]:
    """Tensors of a weights file; ``what`` names it in the error."""
    try:
        return dict(st_load(data))
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise CorruptWeightsError(f"{what} is not a readable safetensors weights file: {exc}") from None


def verify_sha256(data: bytes, expected: str, what: str) -> None:
    got = sha256_hex(data)
    if got != expected:
        raise CorruptWeightsError(
            f"{what} is corrupt: its sha256 is {got[:16]}..., the ring manifest expects "
            f"{expected[:16]}... Refusing to load it; the site that published it can publish "
            f"again, or restart the ring from the best weights."
        )


def _check_json_value(v: Any, where: str) -> Any:
    if isinstance(v, tuple):
        v = list(v)
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        if not math.isfinite(v):
            return repr(v)  # JSON has no inf/nan: tagged as a string, restored on load
        return v
    if isinstance(v, list):
        return [_check_json_value(x, where) for x in v]
    raise TypeError(f"optimizer state {where}: {type(v).__name__} cannot be stored without pickle")


def _restore_json_value(v: Any) -> Any:
    if isinstance(v, str) and v in ("inf", "-inf", "nan"):
        return float(v)
    if isinstance(v, list):
        return [_restore_json_value(x) for x in v]
    return v


def encode_optimizer_state(state_dict: dict[str, Any], meta: dict[str, str]) -> bytes:
    """A torch optimizer ``state_dict()`` as safetensors bytes (tensors) + JSON (the rest)."""
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for idx, per_param in state_dict.get("state", {}).items():
        for name, value in per_param.items():
            if "." in str(name):
                raise TypeError(f"optimizer state name {name!r} contains '.'")
            if isinstance(value, torch.Tensor):
                tensors[f"state.{int(idx)}.{name}"] = _plain(value)
            else:
                scalars.setdefault(str(int(idx)), {})[str(name)] = _check_json_value(value, str(name))
    groups = [
        {str(k): _check_json_value(v, f"param_groups.{k}") for k, v in g.items()}
        for g in state_dict.get("param_groups", [])
    ]
    doc = {"scalars": scalars, "param_groups": groups}
    header = {"format": OPTIMIZER_FORMAT, OPTIMIZER_JSON_KEY: json.dumps(doc, sort_keys=True), **_checked_meta(meta)}
    return st_save(tensors, metadata=header)


_STATE_NAMES = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq", "step")  # what Adam keeps per parameter
_STATE_KEY = re.compile(r"^state\.(\d{1,6})\.(" + "|".join(_STATE_NAMES) + r")$")


def decode_optimizer_state(data: bytes, what: str) -> dict[str, Any]:
    """Rebuild ``{"state": {int: {...}}, "param_groups": [...]}`` for ``load_state_dict``.
    The file comes from another member: only Adam's per-parameter moments and step
    counts (finite, a step never negative) are accepted; anything else is
    CorruptWeightsError, never an uncaught error in the next site's turn."""
    try:
        doc = json.loads(read_header(data)["__metadata__"][OPTIMIZER_JSON_KEY])
        tensors = dict(st_load(data))
        if not isinstance(doc, dict):
            raise ValueError("optimizer header is not a JSON object")
        state: dict[int, dict[str, Any]] = {}
        for key, t in tensors.items():
            m = _STATE_KEY.match(key)
            if m is None:
                raise ValueError(f"tensor {key[:60]!r} is not an optimizer moment")
            if not torch.isfinite(t).all():
                raise ValueError(f"tensor {key[:60]!r} is not finite")
            state.setdefault(int(m.group(1)), {})[m.group(2)] = t
        for idx, values in (doc.get("scalars") or {}).items():
            for name, v in values.items():
                if name not in _STATE_NAMES or isinstance(v, (str, list, dict)):
                    raise ValueError(f"optimizer scalar {str(name)[:40]!r} is not a step count or moment")
                state.setdefault(int(idx), {})[name] = _restore_json_value(v)
        for idx, values in state.items():
            step = values.get("step")
            value = float(step.reshape(-1)[0]) if isinstance(step, torch.Tensor) and step.numel() == 1 else step
            if step is not None and (not isinstance(value, (int, float)) or not 0 <= value < 1e12):
                raise ValueError(f"parameter {idx}: step {str(value)[:20]} is not a count")
        groups = []
        for g in doc.get("param_groups") or []:
            g = {str(k): _restore_json_value(v) for k, v in g.items()}
            if isinstance(g.get("betas"), list):
                g["betas"] = tuple(g["betas"])
            groups.append(g)
    except (SafetensorError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        raise CorruptWeightsError(f"{what} is not a readable optimizer state file: {str(exc)[:200]}") from None
    return {"state": dict(sorted(state.items())), "param_groups": groups}


def read_header(data: bytes) -> dict[str, Any]:
    """The JSON header of safetensors bytes (names, dtypes, shapes, ``__metadata__``)."""
    if len(data) < 8:
        raise ValueError("shorter than a safetensors header")
    n = int.from_bytes(data[:8], "little")
    if n > len(data) - 8 or n > 100_000_000:
        raise ValueError("header length out of range")
    header = json.loads(data[8 : 8 + n])
    if not isinstance(header, dict):
        raise ValueError("header is not a JSON object")
    return header
