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
whereas -20 lies below anything ``core.brain`` keeps inside the brain.

The convention is stored in every weights file and checked at prediction.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ..errors import InputError


@dataclass(frozen=True)
class InputConvention:
    clip_low_hu: float = -20.0
    clip_high_hu: float = 100.0
    background_hu: float = -20.0
    skull_stripped: bool = True  # voxels outside core.brain.brain_mask -> background
    plane: str = "axial"  # 2-D slices data[:, :, k] of the RAS-canonical volume

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
            conv = cls(clip_low_hu=float(d["clip_low_hu"]), clip_high_hu=float(d["clip_high_hu"]),
                       background_hu=float(d["background_hu"]),
                       skull_stripped=bool(d.get("skull_stripped", True)),
                       plane=str(d.get("plane", "axial")))
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{source}: its input convention is unreadable ({exc}).") from None
        if conv.plane != "axial" or not conv.clip_low_hu < conv.clip_high_hu:
            raise InputError(f"{source}: its input convention ({conv}) is not one this program runs.")
        return conv


DEFAULT_INPUT = InputConvention()
