"""Segmentation and volume metrics used by training, evaluation and reports.

Pure numpy/scipy (no torch): Dice, planimetric volume, Pearson correlation of
volumes, the Wilcoxon signed-rank test on paired per-volume scores, removal of
small 3-D connected components (the paper's evaluation drops components under
27 voxels) and the ABC/2 bedside volume estimate (Kothari et al., Stroke 1996).

Masks are any array whose non-zero voxels are hematoma; they are never modified.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

# Smallest number of non-zero paired differences for which an exact two-sided
# Wilcoxon signed-rank p can fall below 0.05: the smallest attainable p is
# 2 / 2**n, which is 0.0625 for n = 5 and 0.03125 for n = 6.
WILCOXON_MIN_N = 6


def _as_bool(mask: np.ndarray) -> np.ndarray:
    return np.asarray(mask) != 0


# --------------------------------------------------------------------- overlap
def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice coefficient 2|A and B| / (|A| + |B|) of two masks of one volume.

    Both masks empty gives 1.0: the two segmentations agree perfectly that
    there is no hematoma (a normal scan segmented as normal). One empty and
    one not gives 0.0.
    """
    a, b = _as_bool(a), _as_bool(b)
    if a.shape != b.shape:
        raise ValueError(f"dice: shapes differ {a.shape} vs {b.shape}")
    total = int(a.sum()) + int(b.sum())
    if total == 0:
        return 1.0
    return 2.0 * int(np.logical_and(a, b).sum()) / total


def volume_ml(mask: np.ndarray, voxel_volume_ml: float) -> float:
    """Planimetric volume: number of non-zero voxels x the volume of one voxel."""
    return float(np.count_nonzero(mask)) * float(voxel_volume_ml)


# ---------------------------------------------------------------- statistics
@dataclass(frozen=True)
class PearsonResult:
    r: float
    p: float
    n: int
    note: str = ""  # why r is nan, when it is


_NOT_FINITE = "some values are not finite (nan or inf)"


def _paired(a, b, what: str) -> tuple[np.ndarray, np.ndarray, bool]:
    """Two equally long float64 vectors, and whether every value is finite."""
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"{what}: {a.size} values vs {b.size} values; they must be paired")
    return a, b, bool(np.all(np.isfinite(a)) and np.all(np.isfinite(b)))


def pearson(x, y) -> PearsonResult:
    """Pearson correlation of paired values (e.g. automatic vs manual volumes).

    With fewer than 3 pairs, or when either side is constant, r and p are nan
    and ``note`` says why, rather than raising.
    """
    x, y, finite = _paired(x, y, "pearson")
    n = int(x.size)
    nan = float("nan")
    if not finite:
        return PearsonResult(nan, nan, n, _NOT_FINITE)
    if n < 3:
        return PearsonResult(nan, nan, n, f"only {n} pair(s); Pearson r needs at least 3")
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        side = "first" if np.ptp(x) == 0 else "second"
        return PearsonResult(nan, nan, n, f"the {side} series is constant; r is undefined")
    from scipy import stats  # on first use: scipy.stats costs half a second of start-up

    res = stats.pearsonr(x, y)
    return PearsonResult(float(res.statistic), float(res.pvalue), n, "")


@dataclass(frozen=True)
class WilcoxonResult:
    statistic: float
    p_value: float
    n: int  # number of pairs given
    note: str = ""  # small-sample or degenerate-input warning; empty when fine


def wilcoxon_paired(a, b) -> WilcoxonResult:
    """Two-sided Wilcoxon signed-rank test of paired scores ``a`` vs ``b``
    (e.g. per-volume Dice of two models on the same test cases), as in the paper.

    Zero differences are dropped (scipy's default ``zero_method="wilcox"``).
    ``note`` says when the test cannot mean much: all differences zero (p = 1,
    statistic 0), or fewer than 6 non-zero differences, where even the most
    extreme outcome has an exact two-sided p of at least 0.0625.
    """
    a, b, finite = _paired(a, b, "wilcoxon_paired")
    n = int(a.size)
    nan = float("nan")
    if not finite:
        return WilcoxonResult(nan, nan, n, _NOT_FINITE)
    nonzero = int(np.count_nonzero(a - b))
    if n == 0:
        return WilcoxonResult(nan, nan, 0, "no pairs")
    if nonzero == 0:
        return WilcoxonResult(0.0, 1.0, n, "all paired differences are zero; the two series are identical")
    with warnings.catch_warnings():
        # one non-zero difference makes scipy's normal approximation divide by 0
        warnings.simplefilter("ignore", RuntimeWarning)
        from scipy import stats

        res = stats.wilcoxon(a, b)
    notes = []
    if nonzero < WILCOXON_MIN_N:
        min_p = min(1.0, 2.0 / 2**nonzero)
        notes.append(
            f"only {nonzero} non-zero difference(s): the smallest possible "
            f"two-sided p is {min_p:.3g}, so p < 0.05 cannot be reached"
        )
    if nonzero < n:
        notes.append(f"{n - nonzero} zero difference(s) dropped")
    p = float(res.pvalue)
    return WilcoxonResult(float(res.statistic), p, n, "; ".join(notes))


# ---------------------------------------------------------------- components
def remove_small_components(mask: np.ndarray, min_voxels: int = 27, connectivity: int = 3) -> np.ndarray:
    """Copy of ``mask`` (bool) without 3-D connected components smaller than
    ``min_voxels`` voxels; components of exactly ``min_voxels`` are kept.

    ``connectivity`` is scipy's: 1 = faces (6-neighbourhood), 2 = faces and
    edges (18), 3 = faces, edges and corners (26, the default, what
    ``scipy.ndimage.label`` with a full 3x3x3 structure gives in the paper's
    evaluation code).
    """
    m = _as_bool(mask)
    if m.ndim != 3:
        raise ValueError(f"remove_small_components needs a 3-D mask, got {m.shape}")
    if connectivity not in (1, 2, 3):
        raise ValueError(f"connectivity must be 1, 2 or 3, got {connectivity}")
    if min_voxels <= 1 or not m.any():
        return m.copy()
    structure = ndimage.generate_binary_structure(3, connectivity)
    labels, n = ndimage.label(m, structure=structure)
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    keep = sizes >= min_voxels
    keep[0] = False
    return keep[labels]


# --------------------------------------------------------------------- ABC/2
@dataclass(frozen=True)
class Abc2Result:
    a_mm: float  # largest diameter on the slice with the largest area
    b_mm: float  # largest extent perpendicular to A on that slice
    c_mm: float  # slices containing hematoma x slice thickness
    volume_ml: float  # A x B x C / 2, in mL
    slice_index: int  # axial index k of the largest-area slice (-1 when empty)


def _slice_diameters(pixels: np.ndarray, si: float, sj: float) -> tuple[float, float]:
    """A and B (mm) of one axial slice's hematoma pixels, measured between the
    outer pixel corners (edge to edge, as calipers on the screen would).

    Only the corners of the first and last pixel of every row can lie on the
    convex hull, so the hull is built from those; A is the largest distance
    between hull vertices, B the width of the hull across A's direction.
    """
    rows = np.flatnonzero(pixels.any(axis=1))
    sub = pixels[rows]
    first = np.argmax(sub, axis=1)
    last = sub.shape[1] - 1 - np.argmax(sub[:, ::-1], axis=1)
    pts = []
    for di in (-0.5, 0.5):
        for j, dj in ((first, -0.5), (last, 0.5)):
            pts.append(np.stack([(rows + di) * si, (j + dj) * sj], axis=1))
    corners = np.unique(np.concatenate(pts), axis=0)
    from scipy.spatial import ConvexHull

    hull = corners[ConvexHull(corners).vertices]  # corners never all collinear
    diff = hull[:, None, :] - hull[None, :, :]
    dist2 = np.einsum("abk,abk->ab", diff, diff)
    p, q = np.unravel_index(int(np.argmax(dist2)), dist2.shape)
    a = math.sqrt(float(dist2[p, q]))
    u = (hull[q] - hull[p]) / a
    across = hull @ np.array([-u[1], u[0]])
    b = float(across.max() - across.min())
    return a, b


def abc2(mask: np.ndarray, affine: np.ndarray) -> Abc2Result:
    """ABC/2 hematoma volume estimate (Kothari et al., Stroke 1996).

    ``mask`` must be on a canonical grid where ``mask[:, :, k]`` is an axial
    slice (see :mod:`core.imaging.orientation`); voxel sizes are the column norms of
    ``affine`` (anisotropic in-plane pixels are handled).

    - slice: the axial slice with the most hematoma pixels (the lowest k on ties);
    - A: the largest diameter of the hematoma on that slice, measured between
      the outer corners of its pixels (edge to edge, so one pixel of 0.5 mm has
      A = 0.71 mm, its diagonal);
    - B: the hematoma's extent on that slice perpendicular to A (its width
      across A, between pixel edges too);
    - C: the number of axial slices containing any hematoma x slice thickness
      (the simplified count; Kothari's half-weighting of small end slices is
      not applied, so C is an upper bound);
    - volume = A x B x C / 2, in mL.

    An empty mask gives all zeros and ``slice_index`` -1.
    """
    m = _as_bool(mask)
    if m.ndim != 3:
        raise ValueError(f"abc2 needs a 3-D mask, got {m.shape}")
    si, sj, sk = (float(s) for s in np.linalg.norm(np.asarray(affine, float)[:3, :3], axis=0))
    areas = m.sum(axis=(0, 1))
    if not areas.any():
        return Abc2Result(0.0, 0.0, 0.0, 0.0, -1)
    k = int(np.argmax(areas))
    a_mm, b_mm = _slice_diameters(m[:, :, k], si, sj)
    c_mm = int(np.count_nonzero(areas)) * sk
    return Abc2Result(a_mm, b_mm, c_mm, a_mm * b_mm * c_mm / 2.0 / 1000.0, k)
