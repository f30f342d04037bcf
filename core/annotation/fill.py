"""Flood fill inside an HU range, in one slice or in 3-D, with a size limit.

A fill from the scalp of a clipped CT-ICH scan follows soft tissue in the
blood range into the cortical ribbon (14 mL in one click on case 051). So a
fill never hands back more than ``limit_voxels``: when the connected region
is larger, the part kept is the seed's connected piece of the region inside
the largest ball around the seed that holds at most the limit (the voxels
nearest the click), and the result says how large the whole region was. The
GUI shows the result as a preview and asks before adding the whole region.

Connectivity is 4 in a slice and 6 in 3-D (faces only), so the fill does not
leak through one-voxel diagonal gaps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generator

import numpy as np
from scipy import ndimage

from ..progress import NEVER_CANCELLED, CancelToken, Progress
from .planes import Plane, PlaneGeometry
from .tools import HURange, VolumeRegion, _bounding_box

STAGE_FILL = "Fill"
_STRUCT_2D = ndimage.generate_binary_structure(2, 1)
_STRUCT_3D = ndimage.generate_binary_structure(3, 1)


@dataclass(frozen=True)
class FillResult:
    region: VolumeRegion  # what the fill adds (at most the limit)
    whole: VolumeRegion  # the whole connected region inside the HU range
    voxel_ml: float

    @property
    def limited(self) -> bool:
        """True when the whole region is larger than the limit and was cut."""
        return self.whole.n_voxels > self.region.n_voxels

    @property
    def ml(self) -> float:
        return self.region.n_voxels * self.voxel_ml

    @property
    def whole_ml(self) -> float:
        return self.whole.n_voxels * self.voxel_ml


def _nearest_part(
    component: np.ndarray, seed: tuple[int, ...], spacing: tuple[float, ...], limit: int, structure: np.ndarray
) -> np.ndarray:
    """The seed's connected piece of ``component`` within the largest ball around
    the seed (mm) holding at most ``limit`` of its voxels."""
    coords = np.nonzero(component)
    d2 = sum(((c - s) * sp) ** 2 for c, s, sp in zip(coords, seed, spacing))
    cut = np.partition(d2, limit - 1)[limit - 1]
    keep = d2 <= cut
    if np.count_nonzero(keep) > limit:  # ties at the cut: stay under the limit
        keep = d2 < cut
    ball = np.zeros_like(component)
    ball[tuple(c[keep] for c in coords)] = True
    labels, _ = ndimage.label(ball, structure=structure)
    return labels == labels[seed]


def fill_region(
    hu: np.ndarray,
    seed: tuple[int, int, int],
    hu_range: HURange,
    spacing: tuple[float, float, float],
    limit_voxels: int,
    *,
    three_d: bool = False,
    plane: Plane = Plane.AXIAL,
    token: CancelToken = NEVER_CANCELLED,
) -> FillResult | None:
    """The fill from ``seed`` (k, row, col of the stack) inside ``hu_range``: in
    the slice of ``plane`` through the seed, or in 3-D. None when the seed
    itself is outside the range."""
    if limit_voxels < 1:
        raise ValueError("the fill limit must be at least one voxel")
    if not all(0 <= s < n for s, n in zip(seed, hu.shape)) or not hu_range.contains(hu[seed]):
        return None
    voxel_ml = float(np.prod(spacing)) / 1000.0
    if three_d:
        inside = hu_range.contains(hu)
        token.raise_if_cancelled()
        labels, _ = ndimage.label(inside, structure=_STRUCT_3D)
        del inside
        token.raise_if_cancelled()
        whole = labels == labels[seed]
        del labels
        box = _bounding_box(whole)
        assert box is not None
        whole_region = VolumeRegion(box, whole[box])
        local = tuple(s - b.start for s, b in zip(seed, box))
        part = whole_region.mask
        if whole_region.n_voxels > limit_voxels:
            part = _nearest_part(part, local, spacing, limit_voxels, _STRUCT_3D)
        return FillResult(VolumeRegion(box, part), whole_region, voxel_ml)
    geo = PlaneGeometry(plane, hu.shape, spacing)  # type: ignore[arg-type]
    depth, drow, dcol = (int(round(v)) for v in geo.from_voxel(seed))
    image = geo.image(hu, depth)
    labels, _ = ndimage.label(hu_range.contains(image), structure=_STRUCT_2D)
    comp = labels == labels[drow, dcol]
    whole_box, whole_block = geo.box(depth, (0, 0), comp)
    part = comp
    if np.count_nonzero(comp) > limit_voxels:
        part = _nearest_part(comp, (drow, dcol), geo.pixel_mm, limit_voxels, _STRUCT_2D)
    _, part_block = geo.box(depth, (0, 0), part)
    return FillResult(VolumeRegion(whole_box, part_block), VolumeRegion(whole_box, whole_block), voxel_ml)


def fill_job(
    hu: np.ndarray,
    seed: tuple[int, int, int],
    hu_range: HURange,
    spacing: tuple[float, float, float],
    limit_voxels: int,
    *,
    three_d: bool,
    plane: Plane = Plane.AXIAL,
    token: CancelToken = NEVER_CANCELLED,
) -> Generator[Progress, None, FillResult | None]:
    """:func:`fill_region` as a progress generator, for a worker thread."""
    yield Progress(STAGE_FILL, 0, 1, "3-D region" if three_d else "region in the slice")
    result = fill_region(hu, seed, hu_range, spacing, limit_voxels, three_d=three_d, plane=plane, token=token)
    yield Progress(STAGE_FILL, 1, 1, "done")
    return result
