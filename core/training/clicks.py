"""Simulated reviewer clicks for training one network for two uses (DeepEdit's scheme).

MONAI Label's DeepEdit trains a single network that segments on its own and
also takes a reviewer's positive and negative clicks as extra input channels:
some training samples get no clicks at all (so the same weights keep working
automatically), the others get clicks simulated from the reference mask,
partly at random on the object and partly *where the current prediction is
wrong*, found by running the network itself (the "interaction loop").

Here, per training patch (an axial slice with its neighbours):

- with probability ``free_fraction`` no click: the automatic use;
- otherwise up to ``random`` positive clicks drawn uniformly among the bleed's
  voxels on the patch's slice *and on the slices around it* (a click on a
  neighbouring slice reaches this one weaker, as in the application, where a
  click's Gaussian is 3-D), sometimes a negative click on brain that is not
  bleed, then up to ``iterations`` rounds of: predict with the clicks so far,
  take the largest error region of the patch's slice (false negatives win
  ties) and click at its most interior pixel, positive on a missed bleed,
  negative on a false one. That is exactly the rule of the reviewer benchmark
  (``bench/bench_correction.py``), in 2-D.

The encoding of a click is :mod:`core.model.guidance`, shared with the click
tool. Validation patches get a fixed choice (every second patch one random
positive click, the others none), so validation losses of two epochs compare.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy import ndimage

from ..model.guidance import GuidancePoint, render

CLICK_CONTEXT_SLICES = 2  # reference slices kept on each side of a patch's own, for off-slice clicks
THRESHOLD = 0.5
_STRUCT_8 = np.ones((3, 3), bool)

Predict = Callable[[np.ndarray], np.ndarray]  # (B, C, P, P) float32 input -> (B, 1, P, P) probabilities


@dataclass(frozen=True)
class ClickTraining:
    sigma_mm: float
    free_fraction: float = 0.4
    iterations: int = 2
    random: int = 2
    negative_chance: float = 0.3  # a random negative click on healthy brain
    background_hu: float = -20.0  # pixels of this value lie outside the brain (skull-stripped input)


def _centre(ctx: np.ndarray) -> int:
    return ctx.shape[0] // 2


def _random_positive(ctx: np.ndarray, spacing: np.ndarray, rng: np.random.Generator) -> GuidancePoint | None:
    """A uniformly drawn bleed voxel of the patch's slice or its neighbours."""
    flat = np.flatnonzero(ctx)
    if flat.size == 0:
        return None
    c, r, col = np.unravel_index(flat[rng.integers(flat.size)], ctx.shape)
    return GuidancePoint(r * spacing[0], col * spacing[1], (c - _centre(ctx)) * spacing[2], True)


def _random_negative(
    image: np.ndarray, ref: np.ndarray, spacing: np.ndarray, rng: np.random.Generator, background: float
) -> GuidancePoint | None:
    """A uniformly drawn brain pixel of the patch's slice that is not bleed."""
    flat = np.flatnonzero((image > background + 0.5) & (ref == 0))
    if flat.size == 0:
        return None
    r, col = np.unravel_index(flat[rng.integers(flat.size)], ref.shape)
    return GuidancePoint(r * spacing[0], col * spacing[1], 0.0, False)


def error_click(ref: np.ndarray, prob: np.ndarray, spacing: np.ndarray) -> GuidancePoint | None:
    """The benchmark reviewer's click on one slice: the most interior pixel of the
    largest error region (8-connected; false negatives on ties), positive on a
    missed bleed. None when the prediction has no error."""
    pred = prob >= THRESHOLD
    ref = ref.astype(bool)
    best: tuple[int, bool, np.ndarray] | None = None
    for positive, err in ((True, ref & ~pred), (False, pred & ~ref)):
        if not err.any():
            continue
        labels, n = ndimage.label(err, structure=_STRUCT_8)
        sizes = np.bincount(labels.ravel())[1:]
        biggest = int(np.argmax(sizes))
        if best is None or sizes[biggest] > best[0]:
            best = (int(sizes[biggest]), positive, labels == biggest + 1)
    if best is None:
        return None
    _, positive, region = best
    dist = ndimage.distance_transform_edt(np.pad(region, 1), sampling=(float(spacing[0]), float(spacing[1])))[
        1:-1, 1:-1
    ]
    r, c = np.unravel_index(int(np.argmax(dist)), region.shape)
    return GuidancePoint(r * float(spacing[0]), c * float(spacing[1]), 0.0, positive)


def _render_batch(points: list[list[GuidancePoint]], spacing: np.ndarray, size: tuple[int, int], sigma: float):
    return np.stack([render(size, (float(sp[0]), float(sp[1])), pts, sigma) for pts, sp in zip(points, spacing)])


def with_training_clicks(
    x: np.ndarray,
    y: np.ndarray,
    y_context: np.ndarray,
    spacing: np.ndarray,
    rng: np.random.Generator,
    sim: ClickTraining,
    predict: Predict,
) -> np.ndarray:
    """``x`` (B, C, P, P) with the two guidance channels of simulated clicks appended.

    ``predict`` runs the network being trained (no gradient) for the
    error-driven clicks; it is called at most ``sim.iterations`` times per batch,
    on the samples that still take a click.
    """
    n = x.shape[0]
    size = x.shape[-2:]
    centre = x.shape[1] // 2
    points: list[list[GuidancePoint]] = [[] for _ in range(n)]
    rounds = np.zeros(n, np.int64)
    for s in range(n):
        if rng.random() < sim.free_fraction:
            continue
        n_random = int(rng.integers(sim.random + 1))
        rounds[s] = int(rng.integers(sim.iterations + 1))
        if n_random == 0 and rounds[s] == 0:  # a clicked sample gets at least one click
            if sim.iterations:
                rounds[s] = 1
            else:
                n_random = 1
        for _ in range(n_random):
            p = _random_positive(y_context[s], spacing[s], rng)
            if p is not None:
                points[s].append(p)
        if rng.random() < sim.negative_chance:
            p = _random_negative(x[s, centre], y[s, 0], spacing[s], rng, sim.background_hu)
            if p is not None:
                points[s].append(p)
    for it in range(int(rounds.max(initial=0))):
        todo = np.flatnonzero(rounds > it)
        guidance = _render_batch([points[s] for s in todo], spacing[todo], size, sim.sigma_mm)
        prob = predict(np.ascontiguousarray(np.concatenate([x[todo], guidance], 1), dtype=np.float32))
        for row, s in enumerate(todo):
            p = error_click(y[s, 0], prob[row, 0], spacing[s])
            if p is not None:
                points[s].append(p)
    guidance = _render_batch(points, spacing, size, sim.sigma_mm)
    return np.ascontiguousarray(np.concatenate([x, guidance], axis=1), dtype=np.float32)


def with_validation_clicks(
    x: np.ndarray, y_context: np.ndarray, spacing: np.ndarray, index: np.ndarray, sim: ClickTraining, seed: int
) -> np.ndarray:
    """The fixed validation choice: patches with an odd index get one random
    positive click (drawn from a generator seeded by the patch's index), the
    others none; the same for every epoch."""
    points: list[list[GuidancePoint]] = []
    for s, i in enumerate(index):
        pts: list[GuidancePoint] = []
        if i % 2:
            p = _random_positive(y_context[s], spacing[s], np.random.default_rng([seed, int(i)]))
            if p is not None:
                pts.append(p)
        points.append(pts)
    guidance = _render_batch(points, spacing, x.shape[-2:], sim.sigma_mm)
    return np.ascontiguousarray(np.concatenate([x, guidance], axis=1), dtype=np.float32)
