"""HU slice -> uint8 grey image for a window width/level, fast.

The display toolkit draws a C-contiguous uint8 image without any per-pixel
work of its own (pyqtgraph's "Performance" notes), so the windowing is done
here: for integer CT (int16) with one table lookup over all 65,536 values,
built once per window; for float CT with clip arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_WIDTH = 1.0


@dataclass(frozen=True)
class WindowLevel:
    width: float
    level: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "width", max(float(self.width), MIN_WIDTH))
        object.__setattr__(self, "level", float(self.level))

    @property
    def low(self) -> float:
        return self.level - self.width / 2.0

    @property
    def high(self) -> float:
        return self.level + self.width / 2.0

    def dragged(self, dx_px: float, dy_px: float, hu_per_px: float = 2.0) -> "WindowLevel":
        """Right-drag: right widens the window, up raises the level (as in most viewers).
        The step grows with the width so bone and brain windows both feel right."""
        step = hu_per_px * max(self.width / 200.0, 0.25)
        return WindowLevel(self.width + dx_px * step, self.level + dy_px * step)

    def __str__(self) -> str:
        return f"W{self.width:.0f} L{self.level:.0f}"


class Windower:
    """Turns HU slices into uint8 for the current window."""

    def __init__(self, wl: WindowLevel) -> None:
        self._wl = wl
        self._lut: np.ndarray | None = None

    @property
    def window(self) -> WindowLevel:
        return self._wl

    @window.setter
    def window(self, wl: WindowLevel) -> None:
        if wl != self._wl:
            self._wl, self._lut = wl, None

    def _table(self) -> np.ndarray:
        if self._lut is None:
            # indexed by the int16 values' bit patterns read as uint16
            values = np.arange(65536, dtype=np.uint16).view(np.int16).astype(np.float32)
            self._lut = self._scale(values)
        return self._lut

    def _scale(self, hu: np.ndarray) -> np.ndarray:
        lo, w = self._wl.low, self._wl.width
        out = (hu.astype(np.float32, copy=False) - np.float32(lo)) * np.float32(255.0 / w)
        return np.clip(out, 0, 255, out=out).astype(np.uint8)

    def apply(self, hu_slice: np.ndarray) -> np.ndarray:
        if hu_slice.dtype == np.int16:
            return self._table()[np.ascontiguousarray(hu_slice).view(np.uint16)]
        return self._scale(hu_slice)
