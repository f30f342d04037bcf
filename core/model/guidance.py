"""A reviewer's clicks as network input: the one encoding training and the click tool share.

Each click is a point in the scan with a sign (inside a bleed, or not blood).
It is rendered on an axial slice as a Gaussian of the *3-D* distance in mm from
the click to each pixel centre, ``exp(-d^2 / (2 sigma^2))``, positive clicks in
one channel and negative ones in the other (the maximum where clicks overlap).
Measured in mm, a click on one 5 mm slice reaches its neighbours (at sigma 5 mm,
0.61 on the next slice, 0.14 two slices away), and the same click means the same
thing on a 1 mm scan. Values under :data:`FLOOR` are set to 0, so a click's
reach is finite (:func:`reach_mm`): slices beyond it see exactly what they see
without clicks, which is what lets the click tool recompute only the slices a
click reaches and keep the automatic prediction everywhere else.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

FLOOR = 0.05  # guidance values below this are 0 (a click's reach ends)
CHANNELS = 2  # positive, negative


@dataclass(frozen=True)
class GuidancePoint:
    """A click relative to one slice: its in-plane position (mm from the slice's
    first pixel centre, along the slice's two axes), its distance from the
    slice's plane (mm) and its sign."""

    row_mm: float
    col_mm: float
    dz_mm: float
    positive: bool


def reach_mm(sigma_mm: float) -> float:
    """The distance beyond which a click's guidance is 0."""
    return sigma_mm * math.sqrt(2.0 * math.log(1.0 / FLOOR))


def render(
    shape: tuple[int, int], pixel_mm: tuple[float, float], points: Sequence[GuidancePoint], sigma_mm: float
) -> np.ndarray:
    """(2, rows, cols) float32 guidance of ``points`` on one slice of ``shape``."""
    out = np.zeros((CHANNELS, *shape), np.float32)
    if not points:
        return out
    rows = np.arange(shape[0], dtype=np.float32) * np.float32(pixel_mm[0])
    cols = np.arange(shape[1], dtype=np.float32) * np.float32(pixel_mm[1])
    two_s2 = np.float32(2.0 * sigma_mm * sigma_mm)
    reach2 = reach_mm(sigma_mm) ** 2
    for p in points:
        dz2 = p.dz_mm * p.dz_mm
        if dz2 > reach2:
            continue
        # separable: exp(-(dr^2 + dc^2 + dz^2) / 2s^2) = e_r outer e_c * e_z
        e_r = np.exp(-((rows - np.float32(p.row_mm)) ** 2) / two_s2)
        e_c = np.exp(-((cols - np.float32(p.col_mm)) ** 2) / two_s2)
        g = np.outer(e_r, e_c) * np.float32(math.exp(-dz2 / float(two_s2)))
        g[g < FLOOR] = 0.0
        channel = out[0 if p.positive else 1]
        np.maximum(channel, g, out=channel)
    return out
