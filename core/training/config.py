"""Training settings: named presets (TOML in ``core/resources/presets``), a user's
TOML file on top, then ``key=value`` overrides from the command line.

Every number of a run lives in :class:`TrainingConfig`; unknown keys and values
of the wrong type are refused with a :class:`ConfigError` naming the key.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

from ..errors import ConfigError
from ..model.architectures import ARCHITECTURES, check_ds, guidance_channels, input_channels
from ..model.input import InputConvention
from ..resources import list_presets, resource_path
from .loss import LOSSES

PRESETS_DIR = resource_path("presets")
DEFAULT_PRESET = "default"  # the product recipe; the paper's presets are named explicitly


@dataclass(frozen=True)
class TrainingConfig:
    architecture: str = "inception"
    ds: int = 4
    loss: str = "cdc"  # "cdc" (continuous Dice) or "soft_dice"
    patch_size: int = 64
    patches_per_volume: int = 100  # N hematoma-centred patches, N <= hematoma voxels
    healthy_per_lesion: float = 1.0  # healthy-brain-centred patches per hematoma-centred one
    batch_size: int = 8
    learning_rate: float = 1e-4
    max_epochs: int = 12
    patience: int = 3  # epochs without a validation improvement > min_delta
    min_delta: float = 1e-4
    val_fraction: float = 0.2
    val_split: str = "patch"  # "patch" (the paper) or "case"
    seed: int = 0
    threads: int = 0  # torch threads; 0 keeps torch's default
    # The product recipe's levers (preset "default"); the paper's presets leave them off.
    in_plane_mm: float = 0.0  # resample slices in-plane to this spacing; 0 = native grid
    context_slices: int = 0  # neighbouring slices per side as extra channels (2.5-D)
    normal_patches_per_volume: int = 0  # brain patches from each scan of normal/ (no hematoma)
    normal_volumes: int = 0  # use at most this many scans of each normal/ folder; 0 = all
    augment: bool = False  # random left-right/front-back flips and a small HU shift per batch
    rotate_degrees: float = 0.0  # with augment: turn each patch by up to this many degrees
    scale_jitter: float = 0.0  # with augment: zoom each patch by a factor within 1 +- this
    lr_schedule: str = "constant"  # "constant" or "cosine" (decays to 5% over max_epochs)
    bce_weight: float = 1.0  # weight of the cross-entropy term of loss "dice_bce"
    # healthy-brain patch centres: "voxel" (every brain voxel equally likely) or "slice"
    # (every slice equally likely; more patches from the vertex and the skull base)
    healthy_sampling: str = "voxel"
    # Clicks (issue 22): > 0 trains a network that also takes a reviewer's clicks
    # (architecture unet25d-click), rendered with this Gaussian width in mm
    # (core/model/guidance.py), with clicks simulated from the masks as MONAI
    # Label's DeepEdit does (core/training/clicks.py).
    click_sigma_mm: float = 0.0
    click_free_fraction: float = 0.4  # training patches shown without any click (automatic use)
    click_iterations: int = 2  # at most this many clicks placed in the prediction's errors
    click_random: int = 2  # at most this many clicks drawn at random on the bleed
    # which weights a run keeps: "best" (lowest validation loss, the paper's rule) or
    # "last" (the last epoch: with a cosine decay the rate has come down to 5% by then;
    # the product recipe's validation loss mixes patches with and without clicks and
    # on 5 held-out volumes picked an early epoch that painted 6 mL into normal scans)
    keep_weights: str = "best"
    # a site's turn refuses to train on fewer approved cases (no "case" in the key: see
    # core.model.weights.check_no_identifiers, which the saved settings pass through)
    min_approved: int = 5
    preset: str = ""

    def __post_init__(self) -> None:
        def bad(key: str, why: str) -> ConfigError:
            return ConfigError(f"training setting {key} = {getattr(self, key)!r}: {why}")

        if self.architecture not in ARCHITECTURES:
            raise bad("architecture", f"choose one of {', '.join(sorted(ARCHITECTURES))}")
        check_ds(self.architecture, self.ds)
        if input_channels(self.architecture) != 2 * self.context_slices + 1:
            raise bad(
                "context_slices",
                f"the {self.architecture} network takes "
                f"{input_channels(self.architecture)} input slice(s); set context_slices = "
                f"{(input_channels(self.architecture) - 1) // 2}",
            )
        if (self.click_sigma_mm > 0) != (guidance_channels(self.architecture) > 0):
            raise bad(
                "click_sigma_mm",
                "a network that takes clicks (unet25d-click) needs click_sigma_mm > 0, "
                "and only such a network can use it",
            )
        if not (
            0.0 <= self.click_sigma_mm <= 50.0
            and 0.0 <= self.click_free_fraction <= 1.0
            and 0 <= self.click_iterations <= 10
            and 0 <= self.click_random <= 10
        ):
            raise ConfigError(
                "click_sigma_mm must lie in [0, 50], click_free_fraction in [0, 1], "
                "click_iterations and click_random in [0, 10]."
            )
        if min(self.in_plane_mm, self.normal_patches_per_volume, self.normal_volumes, self.bce_weight) < 0:
            raise ConfigError(
                "in_plane_mm, normal_patches_per_volume, normal_volumes and bce_weight must not be negative."
            )
        if not (0.0 <= self.rotate_degrees <= 180.0 and 0.0 <= self.scale_jitter < 0.5):
            raise ConfigError("rotate_degrees must lie in [0, 180] and scale_jitter in [0, 0.5).")
        if self.lr_schedule not in ("constant", "cosine"):
            raise bad("lr_schedule", 'choose "constant" or "cosine"')
        if self.keep_weights not in ("best", "last"):
            raise bad("keep_weights", 'choose "best" or "last"')
        if self.healthy_sampling not in ("voxel", "slice"):
            raise bad("healthy_sampling", 'choose "voxel" or "slice"')
        if self.loss not in LOSSES:
            raise bad("loss", f"choose one of {', '.join(LOSSES)}")
        if self.val_split not in ("patch", "case"):
            raise bad("val_split", 'choose "patch" or "case"')
        for key in ("ds", "patch_size", "patches_per_volume", "batch_size", "max_epochs", "patience", "min_approved"):
            if getattr(self, key) < 1:
                raise bad(key, "must be at least 1")
        if self.patch_size < 8:
            raise bad("patch_size", "must be at least 8 pixels")
        if not 0.0 < self.val_fraction < 1.0:
            raise bad("val_fraction", "must lie strictly between 0 and 1")
        if self.healthy_per_lesion < 0:
            raise bad("healthy_per_lesion", "must not be negative")
        if self.learning_rate <= 0 or self.min_delta < 0 or self.threads < 0:
            raise ConfigError("learning_rate must be positive, min_delta and threads not negative.")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def input_convention(self) -> InputConvention:
        """What the network sees with these settings (stored in the weights file)."""
        return InputConvention(
            in_plane_mm=self.in_plane_mm, context_slices=self.context_slices, click_sigma_mm=self.click_sigma_mm
        )

    def replace(self, **changes) -> "TrainingConfig":
        return _build(self.to_dict() | changes, "settings")


_FIELDS = {f.name: f for f in fields(TrainingConfig)}
_TYPES = {"int": int, "float": float, "str": str, "bool": bool}


def _coerce(key: str, value, where: str):
    if key not in _FIELDS:
        raise ConfigError(f"{where}: unknown training setting {key!r}; known: {', '.join(_FIELDS)}.")
    want = _TYPES[str(_FIELDS[key].type)]
    if want is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if want is not bool and isinstance(value, bool) or not isinstance(value, want):
        raise ConfigError(f"{where}: {key} = {value!r} should be {want.__name__}.")
    return value


def _build(values: dict, where: str) -> TrainingConfig:
    return TrainingConfig(**{k: _coerce(k, v, where) for k, v in values.items()})


def read_toml(path: Path) -> dict:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: configuration file not found.") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc}).") from None


def parse_override(text: str) -> tuple[str, object]:
    """``key=value``; the value is read as TOML (``3``, ``1e-4``, ``true``) or else as text."""
    key, sep, raw = text.partition("=")
    key, raw = key.strip(), raw.strip()
    if not sep or not key:
        raise ConfigError(f"--set {text!r}: expected key=value, e.g. --set patience=5.")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key, value


def load_config(
    preset: str | None = None, config_file: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()
) -> TrainingConfig:
    """Preset, then the file, then the overrides (later wins)."""
    name = preset or DEFAULT_PRESET
    path = PRESETS_DIR / f"{name}.toml"
    if not path.is_file():
        raise ConfigError(f"unknown preset {name!r}; available: {', '.join(list_presets())}.")
    values = {k: _coerce(k, v, str(path)) for k, v in read_toml(path).items()}
    values["preset"] = name
    if config_file is not None:
        values |= {k: _coerce(k, v, str(config_file)) for k, v in read_toml(Path(config_file)).items()}
    for text in overrides:
        key, value = parse_override(text)
        values[key] = _coerce(key, value, f"--set {text}")
    return _build(values, "settings")
