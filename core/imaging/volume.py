"""The one in-memory type for a CT scan (and, with ``is_mask``, for masks).

Convention (the same as nibabel's): ``data`` is indexed ``[i, j, k]`` and
``affine`` maps voxel indices ``(i, j, k, 1)`` to RAS+ world millimetres.
Axial slices are ``data[:, :, k]`` once a volume is in the canonical
orientation (see :mod:`core.imaging.orientation`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..cases.case_files import strip_nifti


@dataclass(frozen=True)
class Volume:
    data: np.ndarray  # int16 or float32 HU for CT; uint8 0/1 for masks
    affine: np.ndarray  # 4x4 float64, voxel -> RAS+ mm
    source: Path | None = None  # file or DICOM folder it was read from
    description: str = ""  # e.g. the DICOM series chosen, for the user
    notes: tuple[str, ...] = field(default=())  # warnings worth showing (resampling...)

    def __post_init__(self) -> None:
        if self.data.ndim != 3:
            raise ValueError(f"Volume needs 3-D data, got shape {self.data.shape}")
        aff = np.asarray(self.affine, dtype=np.float64)
        if aff.shape != (4, 4):
            raise ValueError(f"affine must be 4x4, got {aff.shape}")
        object.__setattr__(self, "affine", aff)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.data.shape)  # type: ignore[return-value]

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size in mm along i, j, k (column norms of the affine)."""
        return tuple(float(s) for s in np.linalg.norm(self.affine[:3, :3], axis=0))  # type: ignore[return-value]

    @property
    def voxel_volume_ml(self) -> float:
        """Volume of one voxel in mL (cm^3); exact for sheared grids too."""
        return abs(float(np.linalg.det(self.affine[:3, :3]))) / 1000.0

    @property
    def name(self) -> str:
        """A short label for messages: the file or folder name."""
        if self.source is None:
            return "(unsaved volume)"
        return strip_nifti(self.source.name)

    def with_data(self, data: np.ndarray, **changes) -> "Volume":
        """Same grid, other voxels (a mask, a probability map...)."""
        if tuple(data.shape) != self.shape:
            raise ValueError(f"shape {data.shape} does not match volume {self.shape}")
        return replace(self, data=data, **changes)

    def geometry_text(self) -> str:
        """Human-readable grid description, used in geometry error messages."""
        sp = ", ".join(f"{s:.3g}" for s in self.spacing)
        org = ", ".join(f"{o:.1f}" for o in self.affine[:3, 3])
        return f"{self.shape[0]}x{self.shape[1]}x{self.shape[2]} voxels of {sp} mm, origin ({org}) mm"


def same_grid(a: Volume, b: Volume, tol_mm: float = 1e-3) -> bool:
    """True when both volumes have the same shape and voxel->world mapping."""
    return a.shape == b.shape and bool(np.allclose(a.affine, b.affine, atol=tol_mm, rtol=0))
