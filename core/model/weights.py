"""Weights files: safetensors tensors plus JSON metadata, never pickle.

Weights arrive from other hospitals and are untrusted, so they are stored as
safetensors (raw little-endian arrays behind a JSON header; reading one runs no
code) with our metadata as one JSON string under the header key
``hemarelay``. Loading checks, in order, that the file is a safetensors file,
that the metadata is ours and complete, that the tensors hash to the recorded
sha256 (a changed or damaged file is refused) and that names, shapes and
dtypes are exactly those of the architecture the metadata names.

The metadata carries no patient identifiers: training summaries hold counts,
sizes and settings only (:func:`check_no_identifiers` enforces the obvious
cases before anything is written).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from ..errors import ConfigError, InputError
from ..io.atomic import atomic_path
from .architectures import ARCHITECTURES, build_network, guidance_channels, input_channels
from .input import DEFAULT_INPUT, InputConvention

FORMAT = "hemarelay-weights"
FORMAT_VERSION = 1
META_KEY = "hemarelay"
WEIGHTS_SUFFIX = ".safetensors"
# Keys that would carry who or where a scan came from; training summaries must not.
_IDENTIFYING_KEYS = ("case", "patient", "path", "subject", "mrn", "accession", "birth")


@dataclass(frozen=True)
class WeightsMeta:
    architecture: str
    ds: int
    input: InputConvention = DEFAULT_INPUT
    preset: str = ""
    training: dict = field(default_factory=dict)  # counts and settings only
    metrics: dict = field(default_factory=dict)  # e.g. {"val_loss": -0.71, "train_loss": ...}
    parent_sha256: str | None = None  # the weights these were trained from
    version: str = ""  # a label people read ("site-a round 3")
    created_utc: str = ""
    sha256: str = ""  # of the tensors; set by save_weights

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "architecture": self.architecture,
                "ds": self.ds,
                "input": self.input.to_dict(),
                "preset": self.preset,
                "training": self.training,
                "metrics": self.metrics,
                "parent_sha256": self.parent_sha256,
                "version": self.version,
                "created_utc": self.created_utc,
                "sha256": self.sha256,
            },
            sort_keys=True,
            allow_nan=True,
        )

    @classmethod
    def from_json(cls, text: str, source: str) -> "WeightsMeta":
        try:
            d = json.loads(text)
            if not isinstance(d, dict):
                raise ValueError("not an object")
        except ValueError as exc:
            raise InputError(f"{source}: its metadata is not valid JSON ({exc}).") from None
        if d.get("format") != FORMAT:
            raise InputError(f"{source}: not a Hematoma Relay weights file.")
        if d.get("format_version") != FORMAT_VERSION:
            raise InputError(
                f"{source}: weights format version {d.get('format_version')!r}; "
                f"this program reads version {FORMAT_VERSION}. Update the program."
            )
        try:
            arch, ds, sha = str(d["architecture"]), d["ds"], str(d["sha256"])
        except KeyError as exc:
            raise InputError(f"{source}: its metadata lacks {exc}.") from None
        if arch not in ARCHITECTURES:
            raise InputError(
                f"{source}: network architecture {arch!r} is not one this program "
                f"knows ({', '.join(sorted(ARCHITECTURES))})."
            )
        if not isinstance(ds, int) or isinstance(ds, bool):
            raise InputError(f"{source}: width divisor ds={ds!r} is not an integer.")
        training, metrics = d.get("training", {}), d.get("metrics", {})
        if not isinstance(training, dict) or not isinstance(metrics, dict):
            raise InputError(f"{source}: its training summary or metrics are malformed.")
        parent = d.get("parent_sha256")
        convention = InputConvention.from_dict(d.get("input", {}), source)
        if convention.channels != input_channels(arch):
            raise InputError(
                f"{source}: its input convention gives {convention.channels} slice(s) "
                f"per input, but the {arch} network takes {input_channels(arch)}."
            )
        if convention.takes_clicks != (guidance_channels(arch) > 0):
            raise InputError(
                f"{source}: its input convention and its {arch} network disagree on whether the network takes clicks."
            )
        return cls(
            architecture=arch,
            ds=ds,
            input=convention,
            preset=str(d.get("preset", "")),
            training=training,
            metrics=metrics,
            parent_sha256=None if parent is None else str(parent),
            version=str(d.get("version", "")),
            created_utc=str(d.get("created_utc", "")),
            sha256=sha,
        )


@dataclass(frozen=True)
class LoadedWeights:
    meta: WeightsMeta
    state_dict: dict[str, torch.Tensor]
    path: Path | None = None

    def network(self) -> nn.Module:
        """The network with these weights, in eval mode."""
        net = build_network(self.meta.architecture, self.meta.ds)
        net.load_state_dict(self.state_dict)
        return net.eval()


def tensors_sha256(tensors: dict[str, torch.Tensor]) -> str:
    """Hash of names, dtypes, shapes and bytes, independent of file layout."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def check_no_identifiers(d: dict, where: str = "training summary") -> None:
    """Refuse summaries with keys that could identify a patient or a file."""
    for key, value in d.items():
        low = str(key).lower()
        if any(word in low for word in _IDENTIFYING_KEYS):
            raise ConfigError(
                f"{where}: key {key!r} could identify a patient or a file; "
                "weights files carry counts and settings only."
            )
        if isinstance(value, dict):
            check_no_identifiers(value, where)


def save_weights(path: str | Path, state_dict: dict[str, torch.Tensor], meta: WeightsMeta) -> WeightsMeta:
    """Write weights atomically; returns the metadata as written (with sha256)."""
    path = Path(path)
    check_no_identifiers(meta.training)
    check_no_identifiers(meta.metrics, "metrics")
    tensors = {k: v.detach().to(torch.float32).cpu().contiguous() for k, v in state_dict.items()}
    _check_shapes(tensors, meta.architecture, meta.ds, str(path))
    meta = replace(
        meta,
        sha256=tensors_sha256(tensors),
        created_utc=meta.created_utc or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={META_KEY: meta.to_json()})
    return meta


def read_meta(path: str | Path) -> WeightsMeta:
    """Only the metadata (cheap: reads the header). Not verified against the tensors."""
    return _open(Path(path))[0]


def load_weights(path: str | Path, expect_architecture: str | None = None) -> LoadedWeights:
    """Read and verify a weights file; :class:`InputError` says what is wrong."""
    path = Path(path).expanduser()
    meta, tensors = _open(path, with_tensors=True)
    if expect_architecture is not None and meta.architecture != expect_architecture:
        raise InputError(
            f"{path}: holds a {meta.architecture!r} network, but a {expect_architecture!r} network is needed here."
        )
    if tensors_sha256(tensors) != meta.sha256:
        raise InputError(
            f"{path}: the weights do not match their recorded sha256: the file "
            "was changed or damaged after it was written. Do not use it; ask the "
            "sender for a fresh copy."
        )
    _check_shapes(tensors, meta.architecture, meta.ds, str(path))
    return LoadedWeights(meta, tensors, path)


def _open(path: Path, with_tensors: bool = False):
    if not path.is_file():
        raise InputError(f"{path}: weights file not found.")
    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
            if META_KEY not in header:
                raise InputError(
                    f"{path}: a safetensors file without Hematoma Relay metadata; not a weights file of this program."
                )
            meta = WeightsMeta.from_json(header[META_KEY], str(path))
            tensors = {k: f.get_tensor(k) for k in f.keys()} if with_tensors else {}
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own types for bad headers
        raise InputError(f"{path}: not a readable weights file ({exc}).") from None
    return meta, tensors


def _check_shapes(tensors: dict[str, torch.Tensor], architecture: str, ds: int, source: str) -> None:
    try:
        expected = build_network(architecture, ds).state_dict()
    except ConfigError as exc:
        raise InputError(f"{source}: {exc}") from None
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    wrong = sorted(
        k
        for k in set(expected) & set(tensors)
        if tuple(tensors[k].shape) != tuple(expected[k].shape) or tensors[k].dtype != torch.float32
    )
    if missing or extra or wrong:
        detail = "; ".join(
            s
            for s in (
                f"missing {', '.join(missing[:3])}" if missing else "",
                f"unexpected {', '.join(extra[:3])}" if extra else "",
                f"wrong shape or type {', '.join(wrong[:3])}" if wrong else "",
            )
            if s
        )
        raise InputError(
            f"{source}: the tensors do not form a {architecture} network with "
            f"ds={ds} ({detail}); the file is for another architecture or damaged."
        )
