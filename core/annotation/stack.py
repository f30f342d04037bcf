"""The axial stack: a canonical (RAS) volume laid out the way it is shown.

The viewer and the mask editor work on arrays indexed ``[k, row, col]``:
``k`` is the axial slice (0 = most inferior), ``row`` runs posterior to
anterior (canonical j) and ``col`` runs from the patient's right to the
patient's left (canonical i reversed). Drawn with row 0 at the bottom, this is
the radiological convention: the patient's right on the left of the screen,
anterior at the top. Each ``stack[k]`` is a C-contiguous ``[row, col]`` image,
which is what the display toolkit draws fastest, and edits on it are plain
flat indices into one contiguous array.

Only flips and transposes are involved, so the way back is exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class AxialStack:
    """Maps between a canonical RAS grid ``[i, j, k]`` and the stack ``[k, row, col]``."""

    canonical_shape: tuple[int, int, int]  # (ni, nj, nk)
    canonical_affine: np.ndarray  # voxel (i, j, k) -> RAS mm

    @property
    def shape(self) -> tuple[int, int, int]:
        ni, nj, nk = self.canonical_shape
        return (nk, nj, ni)

    @property
    def spacing(self) -> tuple[float, float, float]:
        """(slice, row, col) spacing in mm."""
        si, sj, sk = (float(s) for s in np.linalg.norm(self.canonical_affine[:3, :3], axis=0))
        return (sk, sj, si)

    @property
    def pixel_mm(self) -> tuple[float, float]:
        """(row, col) size of one pixel in mm."""
        _, sr, sc = self.spacing
        return (sr, sc)

    def to_stack(self, canonical: np.ndarray) -> np.ndarray:
        if tuple(canonical.shape) != self.canonical_shape:
            raise ValueError(f"array of shape {canonical.shape} is not on this canonical grid {self.canonical_shape}")
        return np.ascontiguousarray(canonical[::-1].transpose(2, 1, 0))

    def from_stack(self, stack: np.ndarray) -> np.ndarray:
        if tuple(stack.shape) != self.shape:
            raise ValueError(f"array of shape {stack.shape} is not this stack {self.shape}")
        return np.ascontiguousarray(stack.transpose(2, 1, 0)[::-1])

    def canonical_index(self, k: float, row: float, col: float) -> tuple[float, float, float]:
        ni = self.canonical_shape[0]
        return (ni - 1 - col, row, k)

    def world_mm(self, k: float, row: float, col: float) -> tuple[float, float, float]:
        """RAS world coordinates (mm) of a stack position (pixel centres are integers)."""
        i, j, kk = self.canonical_index(k, row, col)
        x, y, z, _ = self.canonical_affine @ np.array([i, j, kk, 1.0])
        return (float(x), float(y), float(z))

    def slice_z_mm(self, k: int) -> float:
        """Height (world S, mm) of the centre of axial slice ``k``."""
        _, nj, _ = self.canonical_shape
        ni = self.canonical_shape[0]
        return self.world_mm(k, (nj - 1) / 2.0, (ni - 1) / 2.0)[2]
