"""Mask overlays as small uint8 label images with a colour table.

A label image of 0/1/2 with a lookup table of 2-3 RGBA entries is drawn by
pyqtgraph directly as an indexed QImage: no RGBA array is rebuilt per slice
(the cellpose GUI's cost). Outline display keeps only the mask's border
pixels; the difference view labels voxels the clinician added (1) and removed
(2) relative to the model's prediction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MANUAL_RGB = (255, 64, 32)  # red-orange: the clinician's mask
PREDICTION_RGB = (40, 200, 255)  # cyan: the model's mask
ADDED_RGB = (60, 230, 60)  # green: in the manual mask, not in the prediction
REMOVED_RGB = (235, 60, 235)  # magenta: predicted, removed by the clinician
PREVIEW_RGB = (255, 220, 0)  # yellow: a fill, interpolation or click result waiting to be accepted
PREVIEW_REMOVE_RGB = (150, 70, 255)  # purple: what a waiting click result would remove


def lut(*colours: tuple[int, int, int]) -> np.ndarray:
    """Colour table: entry 0 transparent, then one opaque entry per colour."""
    table = np.zeros((len(colours) + 1, 4), np.uint8)
    for n, rgb in enumerate(colours, start=1):
        table[n] = (*rgb, 255)
    return table


@dataclass(frozen=True)
class OverlayStyle:
    visible: bool = True
    opacity: float = 0.5
    outline: bool = False


def outline(mask_slice: np.ndarray) -> np.ndarray:
    """Border pixels of a 2-D mask (set pixels with an unset 4-neighbour), uint8 0/1."""
    m = mask_slice != 0
    inner = m.copy()
    inner[1:, :] &= m[:-1, :]
    inner[:-1, :] &= m[1:, :]
    inner[:, 1:] &= m[:, :-1]
    inner[:, :-1] &= m[:, 1:]
    return (m & ~inner).view(np.uint8)


def difference(manual_slice: np.ndarray, predicted_slice: np.ndarray) -> np.ndarray:
    """1 where added to the prediction, 2 where removed from it, else 0 (uint8)."""
    m = manual_slice != 0
    p = predicted_slice != 0
    out = (m & ~p).view(np.uint8).copy()
    out[p & ~m] = 2
    return out


def labels_for(mask_slice: np.ndarray, style: OverlayStyle) -> np.ndarray:
    """The uint8 image to draw for one mask slice in ``style``."""
    if style.outline:
        return outline(mask_slice)
    return np.ascontiguousarray(mask_slice, dtype=np.uint8)
