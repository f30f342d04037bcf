"""Axial, coronal and sagittal planes through the axial stack ``[k, row, col]``.

Each plane has a depth axis (the index that picks a slice) and shows the two
other axes as a 2-D image ``[drow, dcol]`` drawn with ``drow`` 0 at the
bottom (as the axial view already is):

- axial: depth ``k``; rows = ``row`` (posterior -> anterior, anterior up),
  columns = ``col`` (patient's right on the left: radiological);
- coronal: depth ``row``; rows = ``k`` (superior up), columns = ``col``
  (radiological, like the axial view);
- sagittal: depth ``col``; rows = ``k`` (superior up), columns = ``row``
  reversed (anterior on the left, as ITK-SNAP and 3D Slicer show it).

Pixels of coronal and sagittal images are (slice thickness x in-plane
spacing) mm, e.g. 5 x 0.4 mm on CT-ICH: a view scales them to millimetres so
the head keeps its shape. Everything here is index arithmetic on numpy
arrays (no Qt), shared by the viewer (what to draw, where a click lands) and
the editor (which voxels a stroke in a coronal view touches).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np


class Plane(enum.Enum):
    AXIAL = "axial"
    CORONAL = "coronal"
    SAGITTAL = "sagittal"

    @property
    def depth_axis(self) -> int:
        return _DEPTH[self]

    @property
    def row_axis(self) -> int:
        """The stack axis shown along the image rows (vertical)."""
        return _ROWS[self]

    @property
    def col_axis(self) -> int:
        """The stack axis shown along the image columns (horizontal)."""
        return _COLS[self]

    @property
    def flips_cols(self) -> bool:
        return self is Plane.SAGITTAL

    @property
    def corner_labels(self) -> tuple[str, str, str, str]:
        """Anatomical directions at the (left, right, top, bottom) edges of the view."""
        return _LABELS[self]


_DEPTH = {Plane.AXIAL: 0, Plane.CORONAL: 1, Plane.SAGITTAL: 2}
_ROWS = {Plane.AXIAL: 1, Plane.CORONAL: 0, Plane.SAGITTAL: 0}
_COLS = {Plane.AXIAL: 2, Plane.CORONAL: 2, Plane.SAGITTAL: 1}
_LABELS = {Plane.AXIAL: ("R", "L", "A", "P"), Plane.CORONAL: ("R", "L", "S", "I"), Plane.SAGITTAL: ("A", "P", "S", "I")}


@dataclass(frozen=True)
class PlaneGeometry:
    """One plane through a stack of ``shape`` with ``spacing`` (slice, row, col) mm."""

    plane: Plane
    shape: tuple[int, int, int]
    spacing: tuple[float, float, float]

    @property
    def n_slices(self) -> int:
        return int(self.shape[self.plane.depth_axis])

    @property
    def image_shape(self) -> tuple[int, int]:
        return (int(self.shape[self.plane.row_axis]), int(self.shape[self.plane.col_axis]))

    @property
    def pixel_mm(self) -> tuple[float, float]:
        """(row, col) size of a displayed pixel in mm."""
        return (float(self.spacing[self.plane.row_axis]), float(self.spacing[self.plane.col_axis]))

    # ----------------------------------------------------------- images
    def image(self, volume: np.ndarray, depth: int) -> np.ndarray:
        """The 2-D image of slice ``depth`` (a view for axial, else a small copy)."""
        p = self.plane
        if p is Plane.AXIAL:
            return volume[depth]
        if p is Plane.CORONAL:
            return np.ascontiguousarray(volume[:, depth, :])
        return np.ascontiguousarray(volume[:, ::-1, depth])

    # ----------------------------------------------------------- positions
    def to_voxel(self, depth: float, drow: float, dcol: float) -> tuple[float, float, float]:
        """Stack position (k, row, col) of image position (drow, dcol) on slice ``depth``."""
        out = [0.0, 0.0, 0.0]
        p = self.plane
        out[p.depth_axis] = depth
        out[p.row_axis] = drow
        out[p.col_axis] = (self.shape[p.col_axis] - 1 - dcol) if p.flips_cols else dcol
        return (out[0], out[1], out[2])

    def from_voxel(self, voxel: tuple[float, float, float]) -> tuple[float, float, float]:
        """(depth, drow, dcol) of a stack position (k, row, col)."""
        p = self.plane
        dcol = voxel[p.col_axis]
        if p.flips_cols:
            dcol = self.shape[p.col_axis] - 1 - dcol
        return (voxel[p.depth_axis], voxel[p.row_axis], dcol)

    def box(
        self, depth: int, offset: tuple[int, int], region: np.ndarray
    ) -> tuple[tuple[slice, slice, slice], np.ndarray]:
        """The stack box and bool block of a 2-D ``region`` (top-left at ``offset``
        in image pixels) on slice ``depth``, for :meth:`MaskModel.set_box`."""
        p = self.plane
        r0, c0 = offset
        h, w = region.shape
        rows = slice(r0, r0 + h)
        if p.flips_cols:
            n = self.shape[p.col_axis]
            cols = slice(n - (c0 + w), n - c0)
            region = region[:, ::-1]
        else:
            cols = slice(c0, c0 + w)
        box: list[slice] = [slice(0), slice(0), slice(0)]
        box[p.depth_axis] = slice(depth, depth + 1)
        box[p.row_axis] = rows
        box[p.col_axis] = cols
        # every plane shows its two axes in stack order (row axis < col axis), so
        # the region only needs the depth axis put back
        block = np.expand_dims(region, p.depth_axis)
        return (box[0], box[1], box[2]), np.ascontiguousarray(block)


def geometries(shape: tuple[int, int, int], spacing: tuple[float, float, float]) -> dict[Plane, PlaneGeometry]:
    return {p: PlaneGeometry(p, tuple(int(s) for s in shape), tuple(float(s) for s in spacing)) for p in Plane}
