"""Which HU range a CT's stored values really cover, and what a window cannot show.

Some datasets are stored already windowed: CT-ICH keeps only -20 to 100 HU,
every darker voxel (air, fat) set to -20 and every brighter one (bone) to
100. A bone window (W2000 L500) on such data is flat grey and looks like a
broken viewer; the user must be told it is the data. A side counts as
clipped when its extreme value is far inside the physical range (air is about
-1000 HU, bone over 1000 HU) and holds a pile of voxels, which a real CT's
extremes never do.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

AIR_HU = -1000.0
BONE_HU = 1000.0
_PILE = 0.005  # fraction of voxels at exactly the extreme value that makes it a clip
_SAMPLE = 2_000_000  # voxels looked at (a strided sample is enough for a pile)


@dataclass(frozen=True)
class StoredRange:
    low: float  # lowest stored value
    high: float  # highest stored value
    clipped_low: bool  # everything below ``low`` was set to ``low``
    clipped_high: bool

    @property
    def clipped(self) -> bool:
        return self.clipped_low or self.clipped_high

    def text(self) -> str:
        return f"{self.low:g} to {self.high:g} HU"

    def window_notice(self, name: str, low: float, high: float) -> str:
        """What the window ``low``..``high`` HU cannot show on these data ("" if all is well).

        A window is called out when more than half of its width lies beyond a
        clipped end: the grey levels it promises there are all one value.
        """
        width = max(high - low, 1e-6)
        lost = 0.0
        if self.clipped_high and high > self.high:
            lost += high - max(self.high, low)
        if self.clipped_low and low < self.low:
            lost += min(self.low, high) - low
        if lost / width <= 0.5:
            return ""
        return (
            f"This CT is stored clipped to {self.text()}: the {name} window "
            f"({low:g} to {high:g} HU) cannot show what it is for; every voxel beyond "
            f"the stored range has the same grey."
        )


def stored_range(hu: np.ndarray) -> StoredRange:
    flat = np.asarray(hu).reshape(-1)
    step = max(flat.size // _SAMPLE, 1)
    sample = flat[::step]
    lo, hi = float(flat.min()), float(flat.max())
    pile_lo = np.count_nonzero(sample == lo) / sample.size
    pile_hi = np.count_nonzero(sample == hi) / sample.size
    return StoredRange(
        lo,
        hi,
        clipped_low=bool(lo > AIR_HU + 200 and pile_lo > _PILE),
        clipped_high=bool(hi < BONE_HU and pile_hi > _PILE),
    )
