"""Fill between drawn slices (ITK-SNAP/3D Slicer "interpolate"), without Qt.

The clinician outlines a bleed on a few slices; every run of empty slices
between two drawn ones is filled by shape-based interpolation: each drawn
slice becomes a signed distance map in millimetres (negative inside), the
maps of the two ends are moved so their centroids meet at the linearly
interpolated centroid, blended linearly by position, and the blend's
negative part is the in-between outline. Unlike copying the nearer slice,
this grows and shrinks the shape smoothly; the centroid alignment lets it
drift sideways even when the two outlines do not overlap (5 mm slices apart,
they often do not), where a plain distance blend would leave a hole. Only empty slices are filled: drawn
slices are never changed. The result is a :class:`VolumeRegion` to add as one
undo step (after a preview).

Works along any stack axis, so slices drawn in the coronal or sagittal view
are interpolated across that view's slices.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .tools import VolumeRegion, _bounding_box


@dataclass(frozen=True)
class Interpolation:
    region: VolumeRegion | None  # voxels to add; None when there is nothing to fill
    filled_slices: tuple[int, ...]  # slice indices (along the axis) that get voxels
    gaps: int  # runs of empty slices between drawn slices


def _signed_distance(mask2d: np.ndarray, sampling: tuple[float, float]) -> np.ndarray:
    """Distance in mm to the outline: positive outside, negative inside."""
    outside = ndimage.distance_transform_edt(~mask2d, sampling=sampling)
    inside = ndimage.distance_transform_edt(mask2d, sampling=sampling)
    return outside - inside


def interpolate_between_slices(mask: np.ndarray, axis: int, spacing: tuple[float, float, float]) -> Interpolation:
    """What to add to ``mask`` (3-D, stack layout) so every empty slice along
    ``axis`` lying between two drawn (non-empty) slices gets the blended shape.

    ``spacing`` is the mm size of the three axes (distances in the slice plane
    are measured in mm, so anisotropic pixels blend correctly).
    """
    m = np.moveaxis(np.asarray(mask) != 0, axis, 0)
    sampling = tuple(float(s) for n, s in enumerate(spacing) if n != axis)
    drawn = np.flatnonzero(m.any(axis=(1, 2)))
    add = np.zeros(m.shape, bool)
    filled: list[int] = []
    gaps = 0
    for a, b in zip(drawn[:-1], drawn[1:]):
        if b - a < 2:
            continue
        gaps += 1
        both = m[a] | m[b]
        rows = np.flatnonzero(both.any(axis=1))
        cols = np.flatnonzero(both.any(axis=0))
        # a margin so the distance maps see outside pixels around both shapes
        r0, r1 = max(rows[0] - 2, 0), min(rows[-1] + 3, m.shape[1])
        c0, c1 = max(cols[0] - 2, 0), min(cols[-1] + 3, m.shape[2])
        ma, mb = m[a, r0:r1, c0:c1], m[b, r0:r1, c0:c1]
        da = _signed_distance(ma, sampling)
        db = _signed_distance(mb, sampling)
        ca = np.array(ndimage.center_of_mass(ma))
        cb = np.array(ndimage.center_of_mass(mb))
        for t in range(a + 1, b):
            w = (t - a) / (b - a)
            centre = (1.0 - w) * ca + w * cb
            sa = ndimage.shift(da, centre - ca, order=1, mode="nearest")
            sb = ndimage.shift(db, centre - cb, order=1, mode="nearest")
            inside = (1.0 - w) * sa + w * sb <= 0.0
            if inside.any():
                add[t, r0:r1, c0:c1] = inside
                filled.append(int(t))
    add = np.moveaxis(add, 0, axis)
    box = _bounding_box(add)
    region = None if box is None else VolumeRegion(box, add[box].copy())
    return Interpolation(region, tuple(filled), gaps)
