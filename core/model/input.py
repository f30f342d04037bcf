"""What the network sees: the convention shared by training and prediction.

Intensities stay in Hounsfield units without normalisation, as in the paper,
but are clipped to a fixed window first. The CT-ICH copies we train on store
only [-20, 100] HU (everything below is -20, everything above is 100), while
real scanners give -1024..3000; clipping every scan to the same window makes
a full-range scan look to the network exactly like the data it learned from.
Clipping is a no-op for brain tissue and blood (about -10..90 HU).

Voxels outside the brain mask are set to ``background_hu`` = -20, the bottom
of the window (air or fat in CT-ICH). The authors multiplied by the brain
mask, which gives 0 HU outside: that looks like CSF (0-15 HU) to the network,
whereas -20 lies below anything ``core.imaging.brain`` keeps inside the brain.

Two optional parts of the convention belong to the product recipe (preset
``default``) and are off (0) for the paper's networks:

- ``in_plane_mm``: the network works on axial slices resampled in-plane to this
  spacing (CT-ICH is about 0.42 mm; at 0.84 mm a 128-pixel patch covers 10.8 cm
  of brain instead of 5.4 cm, and a slice costs a quarter of the compute).
  Prediction resamples back to the scan's own grid before thresholding.
- ``context_slices``: the network sees each slice with this many neighbours on
  each side as extra input channels (2.5-D; the first and last slices repeat).
- ``click_sigma_mm``: the network also takes a reviewer's clicks, rendered with
  this Gaussian width (:mod:`core.model.guidance`), as two more channels after
  the slices; 0 for networks that take no clicks.

The convention is stored in every weights file and checked at prediction.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage

from ..errors import InputError

THRESHOLD = 0.5  # a voxel is predicted blood when the network's probability is above this


@dataclass(frozen=True)
class InputConvention:
    clip_low_hu: float = -20.0
    clip_high_hu: float = 100.0
    background_hu: float = -20.0
    skull_stripped: bool = True  # voxels outside core.imaging.brain.brain_mask -> background
    plane: str = "axial"  # 2-D slices data[:, :, k] of the RAS-canonical volume
    in_plane_mm: float = 0.0  # resample axial slices to this spacing first; 0 = the scan's own grid
    context_slices: int = 0  # neighbouring slices on each side given as extra channels
    click_sigma_mm: float = 0.0  # > 0: two click-guidance channels follow the slices

    @property
    def channels(self) -> int:
        """CT slices per network input (the click channels come on top)."""
        return 2 * self.context_slices + 1

    @property
    def takes_clicks(self) -> bool:
        return self.click_sigma_mm > 0

    def working_shape(self, shape: tuple[int, ...], spacing: tuple[float, ...]) -> tuple[int, int, int]:
        """Shape of the canonical volume on the network's working grid."""
        if self.in_plane_mm <= 0:
            return (int(shape[0]), int(shape[1]), int(shape[2]))
        return (
            max(1, int(round(shape[0] * spacing[0] / self.in_plane_mm))),
            max(1, int(round(shape[1] * spacing[1] / self.in_plane_mm))),
            int(shape[2]),
        )

    def to_working(self, data: np.ndarray, spacing: tuple[float, ...], order: int = 1) -> np.ndarray:
        """A canonical volume resampled in-plane to the working grid (slices unchanged).

        ``order`` 1 (linear) for images and probabilities; masks pass through
        linear interpolation and a 0.5 threshold by :meth:`mask_to_working`.
        """
        target = self.working_shape(data.shape, spacing)
        return _resample_in_plane(data, target, order)

    def mask_to_working(self, mask: np.ndarray, spacing: tuple[float, ...]) -> np.ndarray:
        if self.in_plane_mm <= 0:
            return mask.astype(bool)
        return self.to_working(mask.astype(np.float32), spacing) >= 0.5

    def from_working(self, data: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        """Back from the working grid to the canonical grid ``shape`` (linear)."""
        return _resample_in_plane(data, tuple(int(s) for s in shape[:3]), 1)

    def stack(self, volume: np.ndarray, ks: np.ndarray | list[int]) -> np.ndarray:
        """Network input for axial slices ``ks``: (len(ks), channels, I, J) float32.

        Channel ``c`` holds slice ``k - context + c``, clamped to the volume,
        so the first and last slices see themselves as their missing neighbour.
        """
        ks = np.asarray(ks, dtype=np.int64)
        offsets = np.arange(-self.context_slices, self.context_slices + 1)
        idx = np.clip(ks[:, None] + offsets[None, :], 0, volume.shape[2] - 1)
        return np.ascontiguousarray(np.moveaxis(volume[:, :, idx], (2, 3), (0, 1)), dtype=np.float32)

    def prepare(self, hu: np.ndarray, brain: np.ndarray | None) -> np.ndarray:
        """float32 network input from HU values (any shape) and the brain mask."""
        out = np.clip(np.asarray(hu, dtype=np.float32), self.clip_low_hu, self.clip_high_hu)
        if self.skull_stripped:
            if brain is None or brain.shape != out.shape:
                raise ValueError("a brain mask of the same shape is needed to skull-strip")
            out[~brain.astype(bool, copy=False)] = self.background_hu
        return out

    def to_dict(self) -> dict:
        return {"units": "HU", **asdict(self)}

    @classmethod
    def from_dict(cls, d: dict, source: str = "weights file") -> "InputConvention":
        try:
            if d.get("units", "HU") != "HU":
                raise ValueError(f"units {d.get('units')!r}")
            conv = cls(
                clip_low_hu=float(d["clip_low_hu"]),
                clip_high_hu=float(d["clip_high_hu"]),
                background_hu=float(d["background_hu"]),
                skull_stripped=bool(d.get("skull_stripped", True)),
                plane=str(d.get("plane", "axial")),
                in_plane_mm=float(d.get("in_plane_mm", 0.0)),
                context_slices=int(d.get("context_slices", 0)),
                click_sigma_mm=float(d.get("click_sigma_mm", 0.0)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{source}: its input convention is unreadable ({exc}).") from None
        if (
            conv.plane != "axial"
            or not conv.clip_low_hu < conv.clip_high_hu
            or conv.in_plane_mm < 0
            or not 0 <= conv.context_slices <= 4
            or not 0.0 <= conv.click_sigma_mm <= 50.0
        ):
            raise InputError(f"{source}: its input convention ({conv}) is not one this program runs.")
        return conv


DEFAULT_INPUT = InputConvention()


def _resample_in_plane(data: np.ndarray, target: tuple[int, ...], order: int) -> np.ndarray:
    """Resample axes 0 and 1 so that the volume has ``target`` shape (axis 2 kept).

    Voxel centres are mapped corner to corner (``grid_mode``), the same
    geometry as resampling the physical field of view, so going to the working
    grid and back does not shift the image by half a voxel.
    """
    if tuple(data.shape[:2]) == tuple(target[:2]):
        return np.asarray(data, dtype=np.float32)
    zoom = (target[0] / data.shape[0], target[1] / data.shape[1], 1.0)
    return ndimage.zoom(
        np.asarray(data, dtype=np.float32), zoom, order=order, mode="nearest", grid_mode=True, prefilter=False
    )
