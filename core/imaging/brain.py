"""Brain extraction (skull stripping) for head CT, without FSL.

The paper used CT_BET (threshold, fill, FSL bet2). We keep the intracranial
contents: the soft tissue (brain, CSF, blood) enclosed by the skull.

1. Bone is HU >= 100, closed by a few mm so sutures and thin or partial-volume
   bone do not leave gaps. A voxel is *enclosed* when rays in at least 6 of 8
   in-plane directions hit bone: scalp, face, eyes and neck fail this.
2. Enclosed tissue in [-10, 100) HU. A 3-D erosion by ``core_mm`` keeps only the
   thick cerebrum/cerebellum (the cut falls at the foramen magnum, so the
   neck and the mandible's floor drop off); regrown within the tissue.
3. An in-plane opening by ``opening_mm`` cuts thin bridges; largest component.
4. Geodesic growth through enclosed non-bone voxels by ``grow_mm`` brings back
   tissue behind pneumocephalus and thin extra-axial collections.
5. Holes filled slice by slice, then a rim of ``rim_mm`` of bone is added: CT-ICH
   stores everything above 100 HU as 100, so dense epidural/subdural blood
   against the skull is indistinguishable from bone, and the radiologists'
   masks overlap the inner table. Epidural and subdural hematomas therefore
   stay inside the mask (measured coverage in bench/bench_brain.py).

Works on full-range HU (-1024..3000) and on CT-ICH's brain-window copies
(everything below -20 HU stored as -20, above 100 HU as 100): bone is then
exactly 100, which is why tissue stops strictly below 100. Computed on a grid
of about ``work_mm`` in-plane (block subsampling) for speed, then mapped back
to the full grid and refined there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..errors import InputError
from .orientation import to_canonical
from .volume import Volume

_DIRECTIONS = ((1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (1, -1), (-1, 1), (-1, -1))


@dataclass(frozen=True)
class BrainParams:
    bone_hu: float = 100.0  # bone is >= this; tissue is strictly below
    tissue_low_hu: float = -10.0
    close_bone_mm: float = 4.0
    directions_needed: int = 6  # of 8 in-plane rays that must hit bone
    core_mm: float = 8.0
    opening_mm: float = 3.0
    grow_mm: float = 5.0
    rim_mm: float = 3.0
    work_mm: float = 0.8  # in-plane working resolution
    min_brain_ml: float = 50.0


def brain_mask(ct: Volume, params: BrainParams = BrainParams()) -> np.ndarray:
    """Boolean brain mask on ``ct``'s own grid (any orientation)."""
    canon, re = to_canonical(ct)
    return re.to_source(brain_mask_canonical(canon, params))


def brain_mask_canonical(ct: Volume, p: BrainParams = BrainParams()) -> np.ndarray:
    """Boolean brain mask of a volume already in canonical (RAS) orientation."""
    where = str(ct.source) if ct.source else "CT"
    sx, sy, sz = ct.spacing
    fi = max(1, int(round(p.work_mm / sx)))
    fj = max(1, int(round(p.work_mm / sy)))
    hu = ct.data
    small_hu = hu[::fi, ::fj, :]
    small = _extract(small_hu, (sx * fi, sy * fj, sz), p)
    # Back to full resolution, then refine the boundary there: tissue voxels
    # within one working voxel of the coarse mask join it; bone stays limited
    # to the coarse rim.
    up = np.repeat(np.repeat(small, fi, axis=0), fj, axis=1)[: hu.shape[0], : hu.shape[1], :]
    if fi > 1 or fj > 1:
        near = ndimage.binary_dilation(up, structure=_disk(max(fi, fj), 1.0, 1.0))
        tissue = (hu >= p.tissue_low_hu) & (hu < p.bone_hu)
        up = (up & (hu >= p.tissue_low_hu)) | (near & tissue)
        _fill_slices(up)
    brain_ml = float(up.sum()) * abs(float(np.linalg.det(ct.affine[:3, :3]))) / 1000.0
    if brain_ml < p.min_brain_ml:
        raise InputError(f"{where}: found only {brain_ml:.0f} mL of brain tissue enclosed by skull; is this a head CT?")
    return up


def _extract(hu: np.ndarray, spacing: tuple[float, float, float], p: BrainParams) -> np.ndarray:
    sx, sy, _ = spacing

    def in_plane_edt(mask: np.ndarray) -> np.ndarray:
        # distances within each axial slice (slices may be 5 mm apart)
        out = np.empty(mask.shape, np.float32)
        for k in range(mask.shape[2]):
            out[:, :, k] = ndimage.distance_transform_edt(mask[:, :, k], sampling=(sx, sy))
        return out

    bone = hu >= p.bone_hu
    closed = ndimage.binary_closing(bone, structure=_disk(p.close_bone_mm, sx, sy)) if p.close_bone_mm > 0 else bone
    enclosed = _enclosure_votes(closed) >= p.directions_needed
    tissue = (hu >= p.tissue_low_hu) & (hu < p.bone_hu) & enclosed

    core = _largest(ndimage.distance_transform_edt(tissue, sampling=spacing) > p.core_mm)
    if core is None:
        raise InputError("no brain found: no soft tissue enclosed by skull.")
    b = (ndimage.distance_transform_edt(~core, sampling=spacing) <= p.core_mm + max(sx, sy)) & tissue
    core = _largest(in_plane_edt(b) > p.opening_mm)
    if core is None:
        raise InputError("no brain found after separating it from the scalp.")
    b = (in_plane_edt(~core) <= p.opening_mm + max(sx, sy)) & tissue
    if p.grow_mm > 0:
        cross = ndimage.generate_binary_structure(2, 1)[:, :, None]
        steps = max(1, int(round(p.grow_mm / min(sx, sy))))
        b = ndimage.binary_dilation(b, structure=cross, iterations=steps, mask=enclosed & ~bone)
    _fill_slices(b)
    if p.rim_mm > 0:
        b |= (in_plane_edt(~b) <= p.rim_mm) & bone & enclosed
        _fill_slices(b)
    return b


def _largest(mask: np.ndarray) -> np.ndarray | None:
    labels, n = ndimage.label(mask)
    if n == 0:
        return None
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return labels == int(np.argmax(sizes))


def _fill_slices(mask: np.ndarray) -> None:
    for k in range(mask.shape[2]):
        mask[:, :, k] = ndimage.binary_fill_holes(mask[:, :, k])


def _disk(radius_mm: float, sx: float, sy: float) -> np.ndarray:
    ri, rj = int(np.ceil(radius_mm / sx)), int(np.ceil(radius_mm / sy))
    i, j = np.mgrid[-ri : ri + 1, -rj : rj + 1]
    return ((i * sx) ** 2 + (j * sy) ** 2 <= radius_mm**2)[:, :, None]


def _enclosure_votes(bone: np.ndarray) -> np.ndarray:
    """For each voxel, in how many of 8 in-plane directions a ray meets bone.

    "Bone somewhere further along direction d" is an OR over a ray; shifting
    and OR-ing with doubling steps (1, 2, 4, ...) computes it in log2(n) passes.
    """
    votes = np.zeros(bone.shape, np.uint8)
    n = max(bone.shape[:2])
    for di, dj in _DIRECTIONS:
        hit = bone.copy()
        step = 1
        while step < n:
            _shift_or(hit, di * step, dj * step)
            step *= 2
        votes += hit
    return votes


def _shift_or(a: np.ndarray, di: int, dj: int) -> None:
    """In place: a[i, j] |= a[i + di, j + dj] where that index exists."""
    n0, n1 = a.shape[:2]
    if abs(di) >= n0 or abs(dj) >= n1:
        return
    dst_i = slice(max(0, -di), n0 - max(0, di))
    src_i = slice(max(0, di), n0 - max(0, -di))
    dst_j = slice(max(0, -dj), n1 - max(0, dj))
    src_j = slice(max(0, dj), n1 - max(0, -dj))
    a[dst_i, dst_j] |= a[src_i, src_j].copy()
