"""Axial training patches: N centred on hematoma voxels, N on healthy brain.

As in the authors' later ``patch_ops.py``: per volume, N = min(requested,
number of hematoma voxels) patches centred on randomly chosen hematoma voxels
and N centred on brain voxels outside the hematoma (``healthy_per_lesion``
scales the second number; 0 gives the earlier lesion-only sampling); each volume is padded
in-plane with the background value so patches near the edge keep their size.
For an even patch size the centre voxel sits at index ``size // 2``.

Patches keep the input's dtype (int16 for integer HU, which halves memory for
the paper's 255x255 patches) and are converted to float32 per batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PatchSet:
    x: np.ndarray  # (N, C, P, P) network input (int16 or float32 HU); C = 1, or 3 for 2.5-D
    y: np.ndarray  # (N, 1, P, P) uint8 reference 0/1
    group: np.ndarray  # (N,) int32: index of the volume each patch came from (0..V-1)
    # For training with simulated clicks (core/training/clicks.py): the reference on
    # the slices around each patch's own (N, 2G+1, P, P) uint8, zero beyond the
    # volume, and each patch's voxel size (N, 3) mm (patch rows, patch cols, slices).
    y_context: np.ndarray | None = None
    spacing: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def take(self, index: np.ndarray) -> "PatchSet":
        return PatchSet(
            self.x[index],
            self.y[index],
            self.group[index],
            None if self.y_context is None else self.y_context[index],
            None if self.spacing is None else self.spacing[index],
        )

    @staticmethod
    def concat(parts: list["PatchSet"], patch_size: int, dtype=np.int16, channels: int = 1) -> "PatchSet":
        if not parts:
            return PatchSet(
                np.zeros((0, channels, patch_size, patch_size), dtype),
                np.zeros((0, 1, patch_size, patch_size), np.uint8),
                np.zeros(0, np.int32),
            )
        with_context = all(p.y_context is not None and p.spacing is not None for p in parts)
        return PatchSet(
            np.concatenate([p.x for p in parts]),
            np.concatenate([p.y for p in parts]),
            np.concatenate([p.group for p in parts]),
            np.concatenate([p.y_context for p in parts]) if with_context else None,  # type: ignore[misc]
            np.concatenate([p.spacing for p in parts]) if with_context else None,  # type: ignore[misc]
        )


def _choose(candidates: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` distinct flat indices where ``candidates`` is True (fewer if there are fewer)."""
    flat = np.flatnonzero(candidates)
    n = min(n, flat.size)
    return flat[rng.choice(flat.size, size=n, replace=False)] if n else flat[:0]


def _choose_by_slice(candidates: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` distinct flat indices where ``candidates`` is True, spread evenly over
    the axial slices that hold any: each slice is drawn with the same chance, then
    a voxel within it (fewer if there are fewer candidates).

    Drawn per voxel, the large middle slices of the head give most patches and the
    first and last brain slices (the vertex, the skull base) hardly any, though
    that is where bone in the slice's thickness raises brain to blood-like values
    and where the network paints blood into normal scans.
    """
    ks = np.flatnonzero(candidates.any(axis=(0, 1)))
    total = int(np.count_nonzero(candidates))
    if 2 * n > total:  # most candidates are taken anyway (and rejection below would crawl)
        return _choose(candidates, n, rng)
    chosen: set[int] = set()
    per_slice = {int(k): np.flatnonzero(candidates[:, :, k]) for k in ks}
    while len(chosen) < n:
        k = int(ks[rng.integers(ks.size)])
        ij = per_slice[k]
        flat_ij = int(ij[rng.integers(ij.size)])
        i, j = np.unravel_index(flat_ij, candidates.shape[:2])
        chosen.add(int(np.ravel_multi_index((i, j, k), candidates.shape)))
    return np.fromiter(sorted(chosen), np.int64, len(chosen))


def extract_patches(
    image: np.ndarray,
    mask: np.ndarray,
    brain: np.ndarray,
    n: int,
    size: int,
    rng: np.random.Generator,
    background: float,
    healthy_per_lesion: float = 1.0,
    group: int = 0,
    context: int = 0,
    n_healthy: int | None = None,
    healthy_by_slice: bool = False,
    mask_context: int = 0,
    spacing: tuple[float, float, float] | None = None,
) -> PatchSet:
    """Patches from one canonical volume (axial slices are ``[:, :, k]``).

    ``image`` is the prepared network input, ``mask`` the hematoma reference,
    ``brain`` the brain mask (healthy centres are brain and not hematoma).
    ``context`` neighbouring slices on each side become extra channels (the
    first and last slices repeat, as at prediction). ``n_healthy`` overrides
    ``healthy_per_lesion`` (scans without hematoma give healthy patches only).
    ``healthy_by_slice`` spreads healthy centres evenly over the slices
    (:func:`_choose_by_slice`) instead of evenly over the brain's voxels.
    ``mask_context`` > 0 also keeps the reference of that many slices on each
    side (zero beyond the volume) with the voxel ``spacing`` (mm), from which
    training simulates a reviewer's clicks.
    """
    mask = mask.astype(bool, copy=False)
    lesion = _choose(mask, n, rng)
    centres = [lesion]
    if n_healthy is None:
        n_healthy = int(round(lesion.size * healthy_per_lesion))
    if n_healthy:
        choose = _choose_by_slice if healthy_by_slice else _choose
        centres.append(choose(brain.astype(bool, copy=False) & ~mask, n_healthy, rng))
    flat = np.concatenate(centres)
    ii, jj, kk = np.unravel_index(flat, image.shape)
    before, after = size // 2, size - size // 2 - 1
    pad = ((before, after), (before, after), (0, 0))
    img = np.pad(image, pad, constant_values=np.asarray(background, image.dtype))
    msk = np.pad(mask.astype(np.uint8), pad)
    channels = 2 * context + 1
    x = np.empty((flat.size, channels, size, size), image.dtype)
    y = np.empty((flat.size, 1, size, size), np.uint8)
    last = image.shape[2] - 1
    ctx = np.zeros((flat.size, 2 * mask_context + 1, size, size), np.uint8) if mask_context else None
    for t, (i, j, k) in enumerate(zip(ii, jj, kk)):
        # voxel (i, j) sits at (i + before, j + before) in the padded arrays
        for c in range(channels):
            x[t, c] = img[i : i + size, j : j + size, min(max(k - context + c, 0), last)]
        y[t, 0] = msk[i : i + size, j : j + size, k]
        if ctx is not None:
            for c, kc in enumerate(range(k - mask_context, k + mask_context + 1)):
                if 0 <= kc <= last:
                    ctx[t, c] = msk[i : i + size, j : j + size, kc]
    groups = np.full(flat.size, group, np.int32)
    if ctx is None:
        return PatchSet(x, y, groups)
    if spacing is None:
        raise ValueError("mask_context needs the voxel spacing")
    return PatchSet(x, y, groups, ctx, np.tile(np.asarray(spacing, np.float32), (flat.size, 1)))


def split_patches(
    patches: PatchSet, val_fraction: float, by: str, rng: np.random.Generator
) -> tuple[PatchSet, PatchSet]:
    """(train, validation). ``by="patch"``: the paper's split, the last
    ``val_fraction`` of the shuffled patches; ``by="case"``: whole volumes
    (at least one, and at least one left for training) go to validation."""
    n = len(patches)
    if by == "patch":
        order = rng.permutation(n)
        n_val = int(round(n * val_fraction))
        n_val = min(max(n_val, 1 if n > 1 else 0), n - 1) if n else 0
        return patches.take(np.sort(order[: n - n_val])), patches.take(np.sort(order[n - n_val :]))
    if by == "case":
        val_groups = validation_groups(np.unique(patches.group), val_fraction, rng)
        is_val = np.isin(patches.group, val_groups)
        return patches.take(np.flatnonzero(~is_val)), patches.take(np.flatnonzero(is_val))
    raise ValueError(f"unknown split {by!r}")


def validation_groups(groups: np.ndarray, val_fraction: float, rng: np.random.Generator) -> np.ndarray:
    """The volumes (group indices) a split by case holds out: ``val_fraction``
    of them, at least one, and at least one left for training."""
    if groups.size < 2:
        raise ValueError("a split by case needs patches from at least two volumes")
    n_val = min(max(int(round(groups.size * val_fraction)), 1), groups.size - 1)
    return rng.permutation(groups)[:n_val]
