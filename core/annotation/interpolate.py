"""Fill between drawn slices (ITK-SNAP/3D Slicer "interpolate"), without Qt.

The clinician outlines a bleed on a few slices; every run of empty slices
between two drawn ones is filled by shape-based interpolation: each drawn
outline becomes a signed distance map in millimetres (negative inside), the
maps of the two ends are moved so their centroids meet at the linearly
interpolated centroid, blended linearly by position, and the blend's
negative part is the in-between outline. Unlike copying the nearer slice,
this grows and shrinks the shape smoothly; the centroid alignment lets it
drift sideways even when the two outlines do not quite overlap (5 mm slices
apart, they often do not), where a plain distance blend would leave a hole.

Only drawings of the same part are joined, as Slicer interpolates each
segment on its own: each drawn slice is split into its separate outlines (2-D
connected parts), and an outline is joined only with the outlines of the
other end that it overlaps once both are widened by :data:`SAME_PART_MM`
(laid on one another along the slice axis). A blob drawn away from the bleed
is therefore never blended into it, however few slices lie between them.
Only empty slices are filled: drawn slices are never changed. The result is a
:class:`VolumeRegion` to add as one undo step (after a preview).

Works along any stack axis, so slices drawn in the coronal or sagittal view
are interpolated across that view's slices.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .tools import VolumeRegion, _bounding_box

# Two outlines on the two ends of a gap belong to the same part when they overlap
# once each is widened by this much (mm): a bleed drifts a few millimetres between
# drawn slices; a separate drawing lies further away.
SAME_PART_MM = 5.0
_STRUCT_2D_8 = np.ones((3, 3), dtype=bool)


@dataclass(frozen=True)
class Interpolation:
    region: VolumeRegion | None  # voxels to add; None when there is nothing to fill
    filled_slices: tuple[int, ...]  # slice indices (along the axis) that get voxels
    gaps: int  # runs of empty slices between drawn slices joined by at least one part
    unpaired: int = 0  # outlines beside a gap left alone: no outline of the same part on the other side


def _signed_distance(mask2d: np.ndarray, sampling: tuple[float, float]) -> np.ndarray:
    """Distance in mm to the outline: positive outside, negative inside."""
    outside = ndimage.distance_transform_edt(~mask2d, sampling=sampling)
    inside = ndimage.distance_transform_edt(mask2d, sampling=sampling)
    return outside - inside


def _widened(mask2d: np.ndarray, sampling: tuple[float, float]) -> np.ndarray:
    return ndimage.distance_transform_edt(~mask2d, sampling=sampling) <= SAME_PART_MM


def same_part_pairs(
    a: np.ndarray, b: np.ndarray, sampling: tuple[float, float]
) -> tuple[list[tuple[np.ndarray, np.ndarray]], int]:
    """Pairs of outlines of slices ``a`` and ``b`` (bool 2-D) that belong to the same part:
    each outline of ``a`` with the union of ``b``'s outlines it overlaps (widened), merged
    where they share one. Returns the pairs and how many outlines found no partner."""
    la, na = ndimage.label(a, structure=_STRUCT_2D_8)
    lb, nb = ndimage.label(b, structure=_STRUCT_2D_8)
    wide_b = [_widened(lb == j, sampling) for j in range(1, nb + 1)]
    links: dict[int, set[int]] = {}
    for i in range(1, na + 1):
        wide_a = _widened(la == i, sampling)
        links[i] = {j for j in range(1, nb + 1) if (wide_a & (lb == j)).any() or (wide_b[j - 1] & (la == i)).any()}
    # outlines linked through a shared partner are one part (a bleed split in two on one slice)
    groups: list[tuple[set[int], set[int]]] = []
    for i, js in links.items():
        if not js:
            continue
        merged = [g for g in groups if g[1] & js]
        ia, jb = {i}, set(js)
        for g in merged:
            groups.remove(g)
            ia |= g[0]
            jb |= g[1]
        groups.append((ia, jb))
    pairs = [(np.isin(la, sorted(ia)), np.isin(lb, sorted(jb))) for ia, jb in groups]
    paired_b = set().union(*(jb for _, jb in groups)) if groups else set()
    unpaired = sum(1 for js in links.values() if not js) + (nb - len(paired_b))
    return pairs, unpaired


def _blend(ma: np.ndarray, mb: np.ndarray, n_between: int, sampling: tuple[float, float]) -> list[np.ndarray]:
    """The ``n_between`` in-between outlines of ``ma`` and ``mb`` (bool 2-D, same shape)."""
    both = ma | mb
    rows = np.flatnonzero(both.any(axis=1))
    cols = np.flatnonzero(both.any(axis=0))
    # a margin so the distance maps see outside pixels around both shapes
    r0, r1 = max(rows[0] - 2, 0), min(rows[-1] + 3, ma.shape[0])
    c0, c1 = max(cols[0] - 2, 0), min(cols[-1] + 3, ma.shape[1])
    ca_, cb_ = ma[r0:r1, c0:c1], mb[r0:r1, c0:c1]
    da, db = _signed_distance(ca_, sampling), _signed_distance(cb_, sampling)
    ca = np.array(ndimage.center_of_mass(ca_))
    cb = np.array(ndimage.center_of_mass(cb_))
    out = []
    for t in range(1, n_between + 1):
        w = t / (n_between + 1)
        centre = (1.0 - w) * ca + w * cb
        sa = ndimage.shift(da, centre - ca, order=1, mode="nearest")
        sb = ndimage.shift(db, centre - cb, order=1, mode="nearest")
        full = np.zeros(ma.shape, bool)
        full[r0:r1, c0:c1] = (1.0 - w) * sa + w * sb <= 0.0
        out.append(full)
    return out


def interpolate_between_slices(mask: np.ndarray, axis: int, spacing: tuple[float, float, float]) -> Interpolation:
    """What to add to ``mask`` (3-D, stack layout) so every empty slice along ``axis``
    lying between two drawn (non-empty) slices gets the blended outline of each part
    drawn on both of them.

    ``spacing`` is the mm size of the three axes (distances in the slice plane
    are measured in mm, so anisotropic pixels blend correctly).
    """
    m = np.moveaxis(np.asarray(mask) != 0, axis, 0)
    sampling = tuple(float(s) for n, s in enumerate(spacing) if n != axis)
    drawn = np.flatnonzero(m.any(axis=(1, 2)))
    add = np.zeros(m.shape, bool)
    filled: set[int] = set()
    gaps = unpaired = 0
    for a, b in zip(drawn[:-1], drawn[1:]):
        if b - a < 2:
            continue
        pairs, lone = same_part_pairs(m[a], m[b], sampling)
        unpaired += lone
        if pairs:
            gaps += 1
        for ma, mb in pairs:
            for t, inside in zip(range(a + 1, b), _blend(ma, mb, b - a - 1, sampling)):
                if inside.any():
                    add[t] |= inside
                    filled.add(int(t))
    add = np.moveaxis(add, 0, axis)
    box = _bounding_box(add)
    region = None if box is None else VolumeRegion(box, add[box].copy())
    return Interpolation(region, tuple(sorted(filled)), gaps, unpaired)
