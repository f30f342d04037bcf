"""Flood fill inside an HU range, in one slice or in 3-D, that stops at the bleed.

A plain fill in the blood range (40-90 HU) leaks: grey matter reaches 40-45 HU
and touches the bleed, so on the CT-ICH cases the region connected to a bleed
is 225-1,379 mL in 15 of 17 test cases. A reviewer then erased more than they
filled. The fill therefore stops at the bleed's edge by a measured rule
(:class:`EdgeRule`, chosen on the train/ cases' bleeds, never on test/;
``bench/bench_fill.py`` prints the table):

1. inside the brain mask (scalp and muscle share blood's HU range);
2. the range's lower bound is raised towards the clicked bleed: at least the
   median HU of the in-range pixels within 3 mm of the click minus
   ``below_median_hu`` (a 70 HU clot stops at 50 HU, above grey matter; a
   faint 45 HU bleed keeps the range's own bound);
3. an in-plane opening by ``opening_mm`` cuts the thin bridges through which
   what is left still connects to other tissue: the region is eroded, the
   click's piece kept, and grown back by the same disk inside the region.

A fill still never hands back more than ``limit_voxels`` (a safety net): when
the region is larger, the part kept is the seed's connected piece of the region
inside the largest ball around the seed that holds at most the limit (the voxels
nearest the click), and the result says how large the whole region was. The GUI
shows the result as a preview and asks before adding the whole region.

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
LOCAL_MM = 3.0  # the click's neighbourhood whose median HU sets the raised lower bound
FILL_LIMIT_ML_DEFAULT = 5.0  # the most one fill hands back unasked (the safety net below)


@dataclass(frozen=True)
class EdgeRule:
    """How a fill stops at the bleed's edge (see the module docstring).

    The defaults were chosen on the bleeds of both sites' train/ folders: a fill
    from each bleed's most interior voxel, scored by Dice against that bleed
    and by the mL it spills outside it (``bench/bench_fill.py``).
    """

    below_median_hu: float = 20.0  # lower bound >= local median - this
    opening_mm: float = 1.5  # in-plane opening radius; 0 = none

    def lower_bound(self, image: np.ndarray, seed: tuple[int, int], pixel_mm: tuple[float, float], low: float) -> float:
        """The raised lower bound from the median around ``seed`` on its 2-D ``image``."""
        r0, c0 = (int(np.ceil(LOCAL_MM / p)) for p in pixel_mm)
        rows = slice(max(seed[0] - r0, 0), seed[0] + r0 + 1)
        cols = slice(max(seed[1] - c0, 0), seed[1] + c0 + 1)
        rr, cc = np.ogrid[rows, cols]
        disk = ((rr - seed[0]) * pixel_mm[0]) ** 2 + ((cc - seed[1]) * pixel_mm[1]) ** 2 <= LOCAL_MM**2
        window = image[rows, cols][disk]
        return max(low, float(np.median(window)) - self.below_median_hu) if window.size else low


LEGACY = None  # no edge rule: the fill of versions before issue 22 (kept for the benchmark)


def _disk(radius_mm: float, pixel_mm: tuple[float, float]) -> np.ndarray:
    rr, rc = (int(np.ceil(radius_mm / p)) for p in pixel_mm)
    y, x = np.ogrid[-rr : rr + 1, -rc : rc + 1]
    return ((y * pixel_mm[0]) ** 2 + (x * pixel_mm[1]) ** 2) <= radius_mm**2


def _open_around(region: np.ndarray, seed: tuple[int, ...], disk: np.ndarray, structure: np.ndarray) -> np.ndarray:
    """The seed's piece of ``region`` after an opening by ``disk`` (in the last two
    axes): erode, keep the piece at the seed (or the eroded piece nearest to it on
    the seed's plane), grow back inside ``region``. The seed's own voxel is always
    kept, so a bleed thinner than the disk still gives its core."""
    se = disk if region.ndim == 2 else disk[None]
    eroded = ndimage.binary_erosion(region, structure=se)
    if not eroded.any():
        return region
    labels, _ = ndimage.label(eroded, structure=structure)
    at = labels[seed]
    if at == 0:  # the click lies in a part thinner than the disk: the nearest eroded piece
        plane = labels if region.ndim == 2 else labels[seed[0]]
        if not plane.any():
            return region
        _, (ri, ci) = ndimage.distance_transform_edt(plane == 0, return_indices=True)
        at = plane[ri[seed[-2:]], ci[seed[-2:]]]
    # grown back twice by the disk: once undoes the erosion, the second brings back the
    # corners an opening rounds off (a bridge is still cut, 2 x opening_mm from the bleed)
    kept = ndimage.binary_dilation(labels == at, structure=se, iterations=2) & region
    kept[seed] = True
    labels, _ = ndimage.label(kept, structure=structure)
    return labels == labels[seed]


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
    brain: np.ndarray | None = None,
    edge: EdgeRule | None = EdgeRule(),
) -> FillResult | None:
    """The fill from ``seed`` (k, row, col of the stack) inside ``hu_range``: in
    the slice of ``plane`` through the seed, or in 3-D; inside ``brain`` (stack
    layout) when given, stopping at the bleed's edge by ``edge`` (None: the plain
    fill). None when the seed itself is outside the range (or the brain)."""
    if limit_voxels < 1:
        raise ValueError("the fill limit must be at least one voxel")
    if not all(0 <= s < n for s, n in zip(seed, hu.shape)) or not hu_range.contains(hu[seed]):
        return None
    if brain is not None and not brain[seed]:
        return None
    voxel_ml = float(np.prod(spacing)) / 1000.0
    geo = PlaneGeometry(plane if not three_d else Plane.AXIAL, hu.shape, spacing)  # type: ignore[arg-type]
    depth, drow, dcol = (int(round(v)) for v in geo.from_voxel(seed))
    low = hu_range.low
    if edge is not None:
        low = edge.lower_bound(geo.image(hu, depth), (drow, dcol), geo.pixel_mm, hu_range.low)
        low = min(low, float(hu[seed]))  # the clicked voxel itself is always inside
    if three_d:
        inside = (hu >= low) & (hu <= hu_range.high)
        if brain is not None:
            inside &= brain
        token.raise_if_cancelled()
        labels, _ = ndimage.label(inside, structure=_STRUCT_3D)
        del inside
        token.raise_if_cancelled()
        whole = labels == labels[seed]
        del labels
        box = _bounding_box(whole)
        assert box is not None
        local = tuple(s - b.start for s, b in zip(seed, box))
        region = whole[box]
        if edge is not None and edge.opening_mm > 0:
            token.raise_if_cancelled()
            region = _open_around(region, local, _disk(edge.opening_mm, geo.pixel_mm), _STRUCT_3D)
            box2 = _bounding_box(region)
            assert box2 is not None
            region = region[box2]
            local = tuple(s - b.start for s, b in zip(local, box2))
            box = tuple(slice(b.start + b2.start, b.start + b2.stop) for b, b2 in zip(box, box2))
        whole_region = VolumeRegion(box, region)  # type: ignore[arg-type]
        part = whole_region.mask
        if whole_region.n_voxels > limit_voxels:
            part = _nearest_part(part, local, spacing, limit_voxels, _STRUCT_3D)
        return FillResult(VolumeRegion(box, part), whole_region, voxel_ml)  # type: ignore[arg-type]
    image = geo.image(hu, depth)
    inside = (image >= low) & (image <= hu_range.high)
    if brain is not None:
        inside &= geo.image(brain, depth)
    labels, _ = ndimage.label(inside, structure=_STRUCT_2D)
    comp = labels == labels[drow, dcol]
    if edge is not None and edge.opening_mm > 0:
        comp = _open_around(comp, (drow, dcol), _disk(edge.opening_mm, geo.pixel_mm), _STRUCT_2D)
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
    brain: np.ndarray | None = None,
    edge: EdgeRule | None = EdgeRule(),
) -> Generator[Progress, None, FillResult | None]:
    """:func:`fill_region` as a progress generator, for a worker thread."""
    yield Progress(STAGE_FILL, 0, 1, "3-D region" if three_d else "region in the slice")
    result = fill_region(
        hu, seed, hu_range, spacing, limit_voxels, three_d=three_d, plane=plane, token=token, brain=brain, edge=edge
    )
    yield Progress(STAGE_FILL, 1, 1, "done")
    return result
