"""One common orientation for processing, and the exact way back.

Every scan is processed in RAS orientation (index i towards the patient's
Right, j Anterior, k Superior; axial slices are ``data[:, :, k]``). The paper
reoriented to one orientation (RAI, with AFNI) in the same spirit. Only axis
flips and permutations are used, never interpolation, so a result computed on
the canonical grid maps back to the source grid voxel for voxel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .volume import Volume

CANONICAL = ("R", "A", "S")


@dataclass(frozen=True)
class Reorientation:
    """How a source grid was turned into the canonical one."""

    source_shape: tuple[int, int, int]
    source_affine: np.ndarray
    forward: np.ndarray  # nibabel orientation transform, source -> canonical

    @property
    def identity(self) -> bool:
        return bool(np.array_equal(self.forward, [[0, 1], [1, 1], [2, 1]]))

    def to_canonical(self, array: np.ndarray) -> np.ndarray:
        from nibabel import orientations as ornt  # nibabel on first use: start-up time

        return np.ascontiguousarray(ornt.apply_orientation(array, self.forward))

    def to_source(self, array: np.ndarray) -> np.ndarray:
        """Map an array on the canonical grid back onto the source grid exactly."""
        from nibabel import orientations as ornt  # nibabel on first use: start-up time

        back = ornt.ornt_transform(ornt.axcodes2ornt(CANONICAL), ornt.io_orientation(self.source_affine))
        out = np.ascontiguousarray(ornt.apply_orientation(array, back))
        if out.shape[:3] != self.source_shape:
            raise ValueError(f"array of shape {array.shape} is not on this canonical grid")
        return out


def to_canonical(vol: Volume) -> tuple[Volume, Reorientation]:
    """``vol`` in RAS orientation, and the record that maps results back."""
    from nibabel import orientations as ornt  # nibabel on first use: start-up time

    start = ornt.io_orientation(vol.affine)
    forward = ornt.ornt_transform(start, ornt.axcodes2ornt(CANONICAL))
    data = np.ascontiguousarray(ornt.apply_orientation(vol.data, forward))
    affine = vol.affine @ ornt.inv_ornt_aff(forward, vol.shape)
    re = Reorientation(vol.shape, vol.affine.copy(), forward)
    return vol.with_data(data, affine=affine) if data.shape == vol.shape else Volume(
        data=data, affine=affine, source=vol.source, description=vol.description, notes=vol.notes
    ), re
