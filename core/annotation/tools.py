"""What each editing tool touches, computed on numpy arrays (no Qt).

Positions are in pixel units of a slice, ``(row, col)`` floats whose integer
values are pixel centres. Sizes are in millimetres and turned into pixels
with the slice's (row, col) pixel size, so a 5 mm brush is round on screen
whatever the in-plane spacing. The functions return *where* to paint; the
:class:`~core.annotation.model.MaskModel` does the painting and the undo.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..errors import InputError

BLOOD_HU_DEFAULT = (40.0, 90.0)  # clotted acute blood; editable (anaemia lowers it)
_STRUCT_2D_4 = ndimage.generate_binary_structure(2, 1)
_STRUCT_3D_26 = np.ones((3, 3, 3), dtype=bool)


@dataclass(frozen=True)
class HURange:
    low: float = BLOOD_HU_DEFAULT[0]
    high: float = BLOOD_HU_DEFAULT[1]

    def __post_init__(self) -> None:
        if not (np.isfinite(self.low) and np.isfinite(self.high)) or self.low > self.high:
            raise InputError(
                f"HU range {self.low:g} to {self.high:g} is not valid: the lower bound must not exceed the upper one."
            )

    def contains(self, hu: np.ndarray) -> np.ndarray:
        return (hu >= self.low) & (hu <= self.high)

    def __str__(self) -> str:
        return f"{self.low:g} to {self.high:g} HU"


@dataclass(frozen=True)
class SliceRegion:
    """A bool patch of one slice: ``mask`` placed with its top-left at ``offset``."""

    offset: tuple[int, int]  # (row, col)
    mask: np.ndarray  # bool, 2-D

    @property
    def box(self) -> tuple[slice, slice]:
        r0, c0 = self.offset
        h, w = self.mask.shape
        return slice(r0, r0 + h), slice(c0, c0 + w)

    @property
    def empty(self) -> bool:
        return not self.mask.any()

    def restrict(self, allowed: np.ndarray) -> "SliceRegion":
        """Keep only pixels where the full-slice bool ``allowed`` is True."""
        return SliceRegion(self.offset, self.mask & allowed[self.box])


def capsule(
    shape: tuple[int, int],
    p0: tuple[float, float],
    p1: tuple[float, float],
    radius_mm: float,
    pixel_mm: tuple[float, float],
) -> SliceRegion:
    """Pixels within ``radius_mm`` of the segment p0-p1 (a brush dab when p0 == p1).

    A drag is painted segment by segment between mouse positions, so a fast
    stroke leaves no gaps. At least the pixel under the cursor is included.
    """
    if radius_mm <= 0:
        raise InputError(f"brush size must be positive, got {radius_mm:g} mm.")
    h, w = shape
    sr, sc = pixel_mm
    rr, rc = radius_mm / sr, radius_mm / sc
    r_lo = max(int(np.floor(min(p0[0], p1[0]) - rr)), 0)
    r_hi = min(int(np.ceil(max(p0[0], p1[0]) + rr)) + 1, h)
    c_lo = max(int(np.floor(min(p0[1], p1[1]) - rc)), 0)
    c_hi = min(int(np.ceil(max(p0[1], p1[1]) + rc)) + 1, w)
    if r_lo >= r_hi or c_lo >= c_hi:
        return SliceRegion((0, 0), np.zeros((0, 0), bool))
    rows = (np.arange(r_lo, r_hi, dtype=np.float64)[:, None] - p0[0]) * sr
    cols = (np.arange(c_lo, c_hi, dtype=np.float64)[None, :] - p0[1]) * sc
    dr, dc = (p1[0] - p0[0]) * sr, (p1[1] - p0[1]) * sc
    seg2 = dr * dr + dc * dc
    if seg2 > 0:
        t = np.clip((rows * dr + cols * dc) / seg2, 0.0, 1.0)
    else:
        t = 0.0
    dist2 = (rows - t * dr) ** 2 + (cols - t * dc) ** 2
    region = dist2 <= radius_mm * radius_mm
    # a brush smaller than a pixel still paints the pixel under the cursor
    for p in (p0, p1):
        r, c = int(round(p[0])) - r_lo, int(round(p[1])) - c_lo
        if 0 <= r < region.shape[0] and 0 <= c < region.shape[1]:
            region[r, c] = True
    return SliceRegion((r_lo, c_lo), region)


def rectangle(shape: tuple[int, int], p0: tuple[float, float], p1: tuple[float, float]) -> SliceRegion:
    """The pixels of the box whose corners are the pixels under ``p0`` and ``p1``
    (both included), clipped to the slice."""
    h, w = shape
    r_lo = max(int(round(min(p0[0], p1[0]))), 0)
    r_hi = min(int(round(max(p0[0], p1[0]))) + 1, h)
    c_lo = max(int(round(min(p0[1], p1[1]))), 0)
    c_hi = min(int(round(max(p0[1], p1[1]))) + 1, w)
    if r_lo >= r_hi or c_lo >= c_hi:
        return SliceRegion((0, 0), np.zeros((0, 0), bool))
    return SliceRegion((r_lo, c_lo), np.ones((r_hi - r_lo, c_hi - c_lo), bool))


def flood_fill(hu_slice: np.ndarray, seed: tuple[int, int], hu_range: HURange) -> SliceRegion:
    """The 4-connected pixels of one slice within ``hu_range`` reachable from ``seed``.

    4-connectivity (not 8) so the fill does not leak through a one-pixel
    diagonal gap. Empty when the seed itself is outside the range.
    """
    r, c = seed
    h, w = hu_slice.shape
    if not (0 <= r < h and 0 <= c < w):
        return SliceRegion((0, 0), np.zeros((0, 0), bool))
    inside = hu_range.contains(hu_slice)
    if not inside[r, c]:
        return SliceRegion((0, 0), np.zeros((0, 0), bool))
    labels, _ = ndimage.label(inside, structure=_STRUCT_2D_4)
    return SliceRegion((0, 0), labels == labels[r, c])


@dataclass(frozen=True)
class VolumeRegion:
    """A bool block of the volume: ``mask`` is ``data[box]``-shaped."""

    box: tuple[slice, slice, slice]
    mask: np.ndarray

    @property
    def empty(self) -> bool:
        return not self.mask.any()

    @property
    def n_voxels(self) -> int:
        return int(np.count_nonzero(self.mask))


def _bounding_box(mask: np.ndarray) -> tuple[slice, slice, slice] | None:
    box = []
    for axis in range(3):
        other = tuple(a for a in range(3) if a != axis)
        hit = np.flatnonzero(mask.any(axis=other))
        if hit.size == 0:
            return None
        box.append(slice(int(hit[0]), int(hit[-1]) + 1))
    return tuple(box)  # type: ignore[return-value]


def component_at(mask: np.ndarray, point: tuple[int, int, int]) -> VolumeRegion | None:
    """The 3-D connected part (26-connectivity, as in the reports) of ``mask``
    that contains ``point`` (k, row, col); None when that voxel is not set."""
    k, r, c = point
    if not all(0 <= p < n for p, n in zip(point, mask.shape)) or not mask[k, r, c]:
        return None
    box = _bounding_box(mask != 0)
    assert box is not None  # the point itself is set
    labels, _ = ndimage.label(mask[box] != 0, structure=_STRUCT_3D_26)
    local = tuple(p - s.start for p, s in zip(point, box))
    return VolumeRegion(box, labels == labels[local])


def whole(mask: np.ndarray) -> VolumeRegion | None:
    """Every set voxel of ``mask`` as one region (cropped to its bounding box)."""
    box = _bounding_box(mask != 0)
    if box is None:
        return None
    return VolumeRegion(box, mask[box] != 0)
