"""Where the bleed is: slices holding mask or prediction, for "next slice with bleed" keys
and for opening a case where its bleed is largest. No Qt."""

from __future__ import annotations

import numpy as np


def marked_slices(arrays: list[np.ndarray | None], axis: int) -> np.ndarray:
    """Sorted indices along ``axis`` of the slices where any of ``arrays`` (stack layout,
    None skipped) has a voxel set."""
    hit = None
    for a in arrays:
        if a is None:
            continue
        other = tuple(n for n in range(3) if n != axis)
        one = np.asarray(a).any(axis=other)
        hit = one if hit is None else hit | one
    return np.flatnonzero(hit) if hit is not None else np.zeros(0, np.int64)


def next_marked(arrays: list[np.ndarray | None], axis: int, k: int, step: int) -> int | None:
    """The nearest marked slice after ``k`` (``step`` > 0) or before it (``step`` < 0); None
    when there is none that way."""
    ks = marked_slices(arrays, axis)
    ahead = ks[ks > k] if step > 0 else ks[ks < k][::-1]
    return int(ahead[0]) if ahead.size else None


def largest_slice(array: np.ndarray | None) -> int | None:
    """The axial slice (axis 0) with the most voxels set; None when there are none."""
    if array is None:
        return None
    per_slice = np.count_nonzero(array, axis=(1, 2))
    return int(np.argmax(per_slice)) if per_slice.any() else None
