"""From a site's CT + mask pairs to training patches (the hematoma-specific part).

Each case is loaded, put in the canonical RAS orientation, brain-extracted and
turned into the network input by the :class:`InputConvention` (the same code
path prediction uses), then patches are drawn per volume. Each volume has its
own random generator seeded by ``(seed, volume index)``, so the patches of one
volume do not depend on the others. What leaves this module is arrays and
counts: case identifiers stay here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generator, Sequence

import numpy as np

from ..cases.datasets import Case
from ..errors import ConfigError, InputError
from ..imaging.brain import brain_mask
from ..imaging.orientation import to_canonical
from ..io import load_ct, load_mask
from ..model.input import InputConvention
from ..progress import NEVER_CANCELLED, CancelToken, EtaClock, Progress
from .clicks import CLICK_CONTEXT_SLICES
from .config import TrainingConfig
from .patches import PatchSet, extract_patches, split_patches
from .trainer import PatchData

_SPLIT_STREAM = 1_000_000  # generator stream for the train/validation split


def split_rng(config: TrainingConfig) -> np.random.Generator:
    """The generator of the train/validation split (same seed -> same held-out cases)."""
    return np.random.default_rng([config.seed, _SPLIT_STREAM])


@dataclass(frozen=True)
class PreparedCase:
    image: np.ndarray  # canonical network input (int16 when the HU values are whole numbers)
    mask: np.ndarray  # canonical uint8 reference
    brain: np.ndarray  # canonical bool brain mask
    spacing: tuple[float, float, float]  # voxel size of these arrays (mm), on the working grid


def prepare_case(case: Case, convention: InputConvention, normal: bool = False) -> PreparedCase:
    """Canonical network input, reference and brain mask on the network's working grid.

    ``normal``: a scan without hematoma (``normal/``), whose reference is all zero.
    """
    if case.mask_path is None and not normal:
        raise InputError(f"{case.ct_path}: no mask beside it; training needs a mask for every CT.")
    ct = load_ct(case.ct_path)
    canon, re = to_canonical(ct)
    mask = (
        re.to_canonical(load_mask(case.mask_path, ct).data)
        if case.mask_path is not None
        else np.zeros(canon.shape, np.uint8)
    )
    brain = brain_mask(canon)
    image = convention.prepare(canon.data, brain)
    spacing = tuple(float(v) for v in canon.spacing)
    if convention.in_plane_mm > 0:
        image = convention.to_working(image, spacing)
        brain = convention.mask_to_working(brain, spacing)
        mask = convention.mask_to_working(mask, spacing).astype(np.uint8)
        image[~brain] = convention.background_hu
        image = np.round(image)  # whole HU: int16 patches (half the memory of float32)
    if np.array_equal(image, np.round(image)) and np.abs(image).max() < 32768:
        image = image.astype(np.int16)
    # the working grid's own voxel size (the in-plane zoom rounds the shape)
    grid = tuple(s * n / w for s, n, w in zip(spacing, canon.shape, image.shape))
    return PreparedCase(image, mask, brain, grid)  # type: ignore[arg-type]


@dataclass(frozen=True)
class DataSummary:
    """What may leave the site about its training data: counts and sizes only."""

    n_volumes: int
    n_volumes_with_patches: int
    n_train_patches: int
    n_val_patches: int
    hematoma_voxels_outside_brain: float  # fraction of reference voxels the network cannot see
    n_normal_volumes: int = 0  # scans without hematoma that gave healthy-brain patches

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def build_patch_data(
    cases: Sequence[Case],
    config: TrainingConfig,
    convention: InputConvention,
    token: CancelToken = NEVER_CANCELLED,
    normal_cases: Sequence[Case] = (),
) -> Generator[Progress, None, tuple[PatchData, DataSummary]]:
    """Patches from ``cases`` (with masks) and, when the settings ask for them
    (``normal_patches_per_volume``), healthy-brain patches from ``normal_cases``:
    scans without hematoma that teach the network what is *not* blood."""
    if not cases:
        raise InputError("no training cases (ct_NNN.nii.gz with mask_NNN.nii.gz) were found.")
    normals = list(normal_cases) if config.normal_patches_per_volume > 0 else []
    todo = [(c, False) for c in cases] + [(c, True) for c in normals]
    clock = EtaClock()
    parts: list[PatchSet] = []
    outside = total = 0
    for v, (case, normal) in enumerate(todo):
        token.raise_if_cancelled()
        yield Progress(
            "Preparing training patches", v, len(todo), f"volume {v + 1} of {len(todo)}", clock.eta(v, len(todo))
        )
        pc = prepare_case(case, convention, normal=normal)
        ref = pc.mask.astype(bool)
        outside += int(np.count_nonzero(ref & ~pc.brain))
        total += int(np.count_nonzero(ref))
        rng = np.random.default_rng([config.seed, v])
        parts.append(
            extract_patches(
                pc.image,
                ref & pc.brain,
                pc.brain,
                config.patches_per_volume,
                config.patch_size,
                rng,
                convention.background_hu,
                config.healthy_per_lesion,
                group=v,
                context=convention.context_slices,
                n_healthy=config.normal_patches_per_volume if normal else None,
                healthy_by_slice=config.healthy_sampling == "slice",
                mask_context=CLICK_CONTEXT_SLICES if config.click_sigma_mm > 0 else 0,
                spacing=pc.spacing,
            )
        )
    dtype = np.result_type(*[p.x.dtype for p in parts])
    everything = PatchSet.concat([p for p in parts if len(p)], config.patch_size, dtype, convention.channels)
    n_with = sum(1 for p in parts[: len(cases)] if len(p))
    if len(everything) < 2:
        raise InputError("the training cases hold no hematoma voxels inside the brain; nothing to train on.")
    try:
        train, val = split_patches(everything, config.val_fraction, config.val_split, split_rng(config))
    except ValueError as exc:
        raise ConfigError(f"val_split = {config.val_split!r}: {exc}.") from None
    yield Progress("Preparing training patches", len(cases), len(cases), "done", 0.0)
    summary = DataSummary(len(cases), n_with, len(train), len(val), outside / total if total else 0.0, len(normals))
    return PatchData(train, val), summary
