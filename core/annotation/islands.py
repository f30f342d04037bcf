"""The separate parts ("islands") of a mask and the ways to clean them up, without Qt.

3D Slicer's Islands effect is the model: list the 3-D connected parts with their
volumes, keep the largest, remove those under a volume, keep the selected ones.
Parts are 26-connected, as the reports count them (:mod:`core.reports.case`),
so "3 parts" here and in a report mean the same thing. Every operation returns
*what to remove* as a :class:`~core.annotation.tools.VolumeRegion`; the mask
model removes it as one undo step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .tools import VolumeRegion, _bounding_box

_STRUCT_26 = np.ones((3, 3, 3), dtype=bool)


@dataclass(frozen=True)
class Island:
    number: int  # 1 = the largest part, then by decreasing size
    n_voxels: int
    volume_ml: float
    first_slice: int  # 0-based along axis 0 (the axial slice index)
    last_slice: int
    centre: tuple[int, int, int]  # a voxel of the part on its largest slice, near that slice's centre

    def slices_text(self) -> str:
        """1-based slice numbers, as the viewer shows them."""
        a, b = self.first_slice + 1, self.last_slice + 1
        return f"{a}" if a == b else f"{a}-{b}"


@dataclass(frozen=True)
class Islands:
    parts: tuple[Island, ...]
    labels: np.ndarray  # int32, the part number of each voxel (0 outside the mask)

    def __len__(self) -> int:
        return len(self.parts)

    def at(self, voxel: tuple[int, int, int]) -> Island | None:
        """The part holding ``voxel`` (stack position), if any."""
        if not all(0 <= p < n for p, n in zip(voxel, self.labels.shape)):
            return None
        n = int(self.labels[voxel])
        return self.parts[n - 1] if n else None


def find_islands(mask: np.ndarray, voxel_ml: float) -> Islands:
    """The 3-D connected parts of ``mask`` (stack layout), largest first."""
    raw, n = ndimage.label(np.asarray(mask) != 0, structure=_STRUCT_26)
    if n == 0:
        return Islands((), np.zeros(mask.shape, np.int32))
    sizes = np.bincount(raw.ravel(), minlength=n + 1)[1:]
    order = np.argsort(-sizes, kind="stable")  # part numbers by decreasing size
    renumber = np.zeros(n + 1, np.int32)
    renumber[order + 1] = np.arange(1, n + 1, dtype=np.int32)
    labels = renumber[raw]
    boxes = ndimage.find_objects(raw)
    parts = []
    for new, old in enumerate(order, start=1):
        box = boxes[old]
        local = raw[box] == old + 1
        per_slice = local.sum(axis=(1, 2))
        k_local = int(np.argmax(per_slice))
        rows, cols = np.nonzero(local[k_local])
        cr, cc = rows.mean(), cols.mean()
        nearest = int(np.argmin((rows - cr) ** 2 + (cols - cc) ** 2))
        centre = (box[0].start + k_local, box[1].start + int(rows[nearest]), box[2].start + int(cols[nearest]))
        nonzero = np.flatnonzero(per_slice)
        parts.append(
            Island(
                new,
                int(sizes[old]),
                float(sizes[old]) * voxel_ml,
                box[0].start + int(nonzero[0]),
                box[0].start + int(nonzero[-1]),
                centre,
            )
        )
    return Islands(tuple(parts), labels)


def _region(remove: np.ndarray) -> VolumeRegion | None:
    box = _bounding_box(remove)
    return None if box is None else VolumeRegion(box, remove[box].copy())


def remove_parts(islands: Islands, numbers: set[int]) -> VolumeRegion | None:
    """The voxels of the parts ``numbers``; None when that is nothing."""
    if not numbers:
        return None
    return _region(np.isin(islands.labels, sorted(numbers)))


def keep_parts(islands: Islands, numbers: set[int]) -> VolumeRegion | None:
    """Everything but the parts ``numbers``."""
    return remove_parts(islands, {p.number for p in islands.parts} - set(numbers))


def keep_largest(islands: Islands) -> VolumeRegion | None:
    return keep_parts(islands, {1})


def smaller_than(islands: Islands, min_ml: float) -> set[int]:
    """The parts under ``min_ml`` millilitres."""
    return {p.number for p in islands.parts if p.volume_ml < min_ml}
