"""Click bleed: a reviewer's positive and negative clicks give the new mask (no Qt).

The one function the application's click tool and the reviewer benchmark
(``bench/bench_correction.py``) both call is :meth:`ClickContext.segment`: it
takes the mask the reviewer started from and every click placed so far, and
returns the new mask. A :class:`ClickContext` is built once per case
(:func:`prepare_clicks`, on a worker: brain extraction, the network's working
grid, the automatic probabilities of every slice).

How clicks become a mask:

1. The network that takes clicks (``unet25d-click``) runs, with every click
   rendered as guidance (:mod:`core.model.guidance`), on the slices the clicks
   reach, and only on those whose set of reaching clicks changed since the
   last call: a click on a 5 mm scan costs about 5 slices, not the volume.
   Slices no click reaches keep the automatic probabilities (the same
   network without clicks).
2. A positive click adds the bleed the network now sees *at the click*: the
   3-D parts (26-connected) of probability > 0.5 that hold a voxel within
   ``near_mm`` of the click. The network, not an HU range, decides what is
   blood, so a hypodense collection is reachable. Its parts then grow by up to
   ``edge_growth_mm`` in-plane into adjacent clot-like voxels (the network's
   parts fall short of the radiologists' outlines in most cases). Where the
   network sees nothing at a positive click, the fill that stops at the bleed's
   edge (:mod:`core.annotation.fill`) starts there instead, and where that
   finds nothing either (an HU the fill's range leaves out), the click's own
   ``near_mm`` neighbourhood inside the brain is added: every positive click
   does something, as every negative one does (on the cross-validation's
   fold 0, clicks alone, mean Dice after 10 clicks 0.69 -> 0.73; two cases had
   stalled on a click that changed nothing).
3. A negative click removes, from the part of the mask it falls in, what the
   network no longer calls blood, and in any case the voxels within
   ``near_mm`` of the click (a reviewer who says "not here" is obeyed there).
4. Everything else of the starting mask is kept: manual strokes are never
   overwritten by the network.

A weights file whose network takes no clicks (``unet25d`` and the paper's
networks) still works for what it can do: its automatic probabilities are
used as they are, so a positive click adds the part of the automatic
prediction at the click and a negative click removes as in 3.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generator, Sequence

import numpy as np
from scipy import ndimage

from ..errors import InputError
from ..imaging.brain import brain_mask_canonical
from ..imaging.volume import Volume
from ..model.guidance import GuidancePoint, reach_mm, render
from ..model.input import THRESHOLD
from ..progress import NEVER_CANCELLED, CancelToken, Progress
from .fill import FILL_LIMIT_ML_DEFAULT, fill_region
from .stack import AxialStack
from .tools import HURange

if TYPE_CHECKING:  # torch loads with the segmenter, on the worker that prepares a case
    from ..evaluation.inference import Segmenter, WorkingGrid

STAGE_PREPARE = "Preparing the click tool"
NEAR_MM = 3.0  # a click's own neighbourhood: joined (positive) or cleared (negative)
EDGE_GROWTH_MM = 2.0  # the network under-segments (7 of 9 test volumes): its parts grow into the clot
_STRUCT_26 = np.ones((3, 3, 3), bool)


@dataclass(frozen=True)
class Click:
    """A click in the stack layout ``[k, row, col]`` (voxel indices)."""

    k: int
    row: int
    col: int
    positive: bool = True


@dataclass(frozen=True)
class ClickResult:
    mask: np.ndarray  # the new mask, stack layout uint8
    added: int  # voxels set that were not in the starting mask
    removed: int  # voxels of the starting mask cleared
    slices_run: int  # slices the network ran on for this call
    seconds: float
    message: str = ""  # for the status bar when a click changed nothing


@dataclass
class ClickContext:
    """One case ready for the click tool (build it with :func:`prepare_clicks`)."""

    segmenter: Segmenter
    stack: AxialStack
    brain: np.ndarray  # stack layout bool
    grid: WorkingGrid
    prob_w: np.ndarray  # working-grid probabilities of the crop (rows, cols, slices), current clicks
    auto_w: np.ndarray  # the same without any click
    prob: np.ndarray  # stack-layout float32 probabilities (current clicks), 0 outside the brain
    hu: np.ndarray | None = None  # the CT in stack layout (for the edge growth)
    near_mm: float = NEAR_MM
    positive_threshold: float = THRESHOLD  # probability above which a positive click's part counts
    # Chosen by the reviewer benchmark on the cross-validation folds (issue 22 note):
    edge_growth_mm: float = EDGE_GROWTH_MM  # grow a positive click's part into adjacent blood-like voxels
    fill_fallback: bool = True  # a positive click the network's parts leave out gets the bleed-edge fill
    obey_positive: bool = True  # a positive click nothing else reached adds its own neighbourhood
    _reaching: dict[int, frozenset[Click]] = field(default_factory=dict)  # slice -> clicks its probabilities used

    @property
    def takes_clicks(self) -> bool:
        return self.segmenter.guidance_channels > 0

    @property
    def reach_slices(self) -> int:
        """How many slices on each side of its own a click reaches."""
        if not self.takes_clicks:
            return 0
        sigma = self.segmenter.convention.click_sigma_mm
        return int(math.floor(reach_mm(sigma) / self.stack.spacing[0] + 1e-9))

    # ------------------------------------------------------------ the one function
    def segment(self, start_mask: np.ndarray, clicks: Sequence[Click]) -> ClickResult:
        """The mask after ``clicks`` (all clicks so far, in order) on ``start_mask``."""
        t0 = time.perf_counter()
        if tuple(start_mask.shape) != self.stack.shape:
            raise ValueError(f"mask {start_mask.shape} does not fit this case {self.stack.shape}")
        for c in clicks:
            if not all(0 <= v < n for v, n in zip((c.k, c.row, c.col), self.stack.shape)):
                raise InputError(f"The click at slice {c.k + 1}, row {c.row}, column {c.col} lies outside the scan.")
        run = self._update_probabilities(clicks)
        base = np.asarray(start_mask) != 0
        fg = self.prob > THRESHOLD
        new = base.copy()
        message = ""
        positives = [c for c in clicks if c.positive]
        if positives:
            fg_pos = fg if self.positive_threshold == THRESHOLD else self.prob > self.positive_threshold
            grown = self._parts_near(fg_pos, positives)
            if self.edge_growth_mm > 0 and grown.any():
                grown = self._grow_edge(grown)
            new |= grown
            obeyed = 0
            for c in positives:
                if self.fill_fallback and not new[c.k, c.row, c.col]:
                    self._fill_at(new, c)
                if self.obey_positive and not new[c.k, c.row, c.col]:
                    box, ball = self._near(c)
                    inside = ball & self.brain[box]
                    if inside.any():  # a click outside the brain adds nothing (and says nothing of it)
                        new[box] |= inside
                        obeyed += 1
            if obeyed:
                message = (
                    f"Click bleed: the model sees no bleed at {obeyed} of the clicks; only their {self.near_mm:g} mm "
                    "neighbourhood was added (draw more with the brush; Backspace takes a click back)."
                )
        negatives = [c for c in clicks if not c.positive]
        if negatives:
            removal = self._removed_by(new, fg, negatives)
            for c in positives:  # a reviewer's "this is blood" stands: never cleared by a later "not blood"
                box, ball = self._near(c)
                removal[box] &= ~ball
            new &= ~removal
        added = int(np.count_nonzero(new & ~base))
        removed = int(np.count_nonzero(base & ~new))
        if not message and added == 0 and removed == 0 and clicks:
            message = "Click bleed: the clicks change nothing here."
        return ClickResult(new.astype(np.uint8), added, removed, run, time.perf_counter() - t0, message)

    # ------------------------------------------------------------ probabilities
    def _reaching_clicks(self, k: int, clicks: Sequence[Click]) -> frozenset[Click]:
        reach = self.reach_slices
        return frozenset(c for c in clicks if abs(c.k - k) <= reach) if self.takes_clicks else frozenset()

    def _update_probabilities(self, clicks: Sequence[Click]) -> int:
        """Recompute the slices whose reaching clicks changed; returns how many ran."""
        todo, restore = [], []
        for k in (int(v) for v in self.grid.slices):
            want = self._reaching_clicks(k, clicks)
            if want == self._reaching.get(k, frozenset()):
                continue
            (todo if want else restore).append(k)
            self._reaching[k] = want
        for k in restore:
            self.prob_w[:, :, self._slot(k)] = self.auto_w[:, :, self._slot(k)]
        from ..evaluation.inference import WORKING_BATCH  # loaded with the segmenter

        for start in range(0, len(todo), WORKING_BATCH * 2):
            ks = np.asarray(todo[start : start + WORKING_BATCH * 2])
            guidance = np.stack([self._guidance(int(k), self._reaching[int(k)]) for k in ks])
            out = self.segmenter.run_working_slices(self.grid, ks, guidance)
            self.prob_w[:, :, [self._slot(int(k)) for k in ks]] = np.moveaxis(out, 0, -1)
        changed = todo + restore
        if changed:
            self._to_stack(changed)
        return len(todo)

    def _slot(self, k: int) -> int:
        return int(np.searchsorted(self.grid.slices, k))

    def _guidance(self, k: int, clicks: frozenset[Click]) -> np.ndarray:
        """(2, crop rows, crop cols) guidance of ``clicks`` on working-grid slice ``k``."""
        i0, _, j0, _ = self.grid.crop
        si, sj, sk = self.grid.spacing
        ni = self.stack.canonical_shape[0]
        nj = self.stack.canonical_shape[1]
        wi, wj = self.grid.image.shape[:2]
        points = []
        for c in clicks:
            i, j, kk = self.stack.canonical_index(c.k, c.row, c.col)
            # canonical voxel centre -> working-grid position (corner-to-corner zoom)
            iw = (i + 0.5) * wi / ni - 0.5
            jw = (j + 0.5) * wj / nj - 0.5
            points.append(GuidancePoint((iw - i0) * si, (jw - j0) * sj, (kk - k) * sk, c.positive))
        shape = (self.grid.crop[1] - i0, self.grid.crop[3] - j0)
        return render(shape, (si, sj), points, self.segmenter.convention.click_sigma_mm)

    def _to_stack(self, ks: list[int]) -> None:
        """Working-grid probabilities of slices ``ks`` onto the stack layout."""
        conv = self.segmenter.convention
        ks = sorted(ks)
        full = np.zeros((*self.grid.image.shape[:2], len(ks)), np.float32)
        full[self.grid.box] = self.prob_w[:, :, [self._slot(k) for k in ks]]
        ni, nj, _ = self.stack.canonical_shape
        canon = conv.from_working(full, (ni, nj, len(ks))) if conv.in_plane_mm > 0 else full
        for n, k in enumerate(ks):
            # stack[k] = canonical[::-1, :, k].T (core.annotation.stack)
            self.prob[k] = np.clip(canon[::-1, :, n].T, 0.0, 1.0) * self.brain[k]

    # ------------------------------------------------------------ regions
    def _near(self, c: Click) -> tuple[tuple[slice, slice, slice], np.ndarray]:
        """The box around a click and the ball of ``near_mm`` in it (stack layout)."""
        sk, sr, sc = self.stack.spacing
        rk, rr, rc = (int(math.floor(self.near_mm / s)) for s in (sk, sr, sc))
        box = tuple(
            slice(max(v - r, 0), min(v + r + 1, n))
            for v, r, n in zip((c.k, c.row, c.col), (rk, rr, rc), self.stack.shape)
        )
        kk, rows, cols = np.ogrid[box[0], box[1], box[2]]
        ball = ((kk - c.k) * sk) ** 2 + ((rows - c.row) * sr) ** 2 + ((cols - c.col) * sc) ** 2 <= self.near_mm**2
        return box, ball  # type: ignore[return-value]

    def _parts_near(self, fg: np.ndarray, clicks: Sequence[Click]) -> np.ndarray:
        """The 26-connected parts of ``fg`` holding a voxel near any of ``clicks``."""
        return _parts_touching(fg, [self._near(c) for c in clicks])

    def _grow_edge(self, region: np.ndarray) -> np.ndarray:
        """``region`` grown in-plane by up to ``edge_growth_mm`` into brain voxels whose HU
        lies between the region's median minus 20 (at least 40) and 90: the network
        finds the bleed, and its edge follows the clot (the fill's rule, EdgeRule)."""
        assert self.hu is not None
        box = _grown_box(region, self.stack.shape, (1, *self._px(self.edge_growth_mm)))
        sub = region[box]
        hu = self.hu[box]
        low = max(40.0, float(np.median(hu[sub])) - 20.0)
        allowed = (hu >= low) & (hu <= 90.0) & self.brain[box]
        sr, sc = self.stack.spacing[1:]
        r = self._px(self.edge_growth_mm)
        yy, xx = np.ogrid[-r[0] : r[0] + 1, -r[1] : r[1] + 1]
        disk = ((yy * sr) ** 2 + (xx * sc) ** 2 <= self.edge_growth_mm**2)[None]
        grown = ndimage.binary_dilation(sub, structure=disk) & allowed | sub
        out = region.copy()
        out[box] = grown
        return out

    def _fill_at(self, mask: np.ndarray, c: Click) -> None:
        """Add the fill that stops at the bleed's edge from ``c`` (on the slices the
        click reaches, inside the brain, at most the fill's default limit) to
        ``mask``: where the network sees no bleed at a positive click, the clot's
        own HU decide."""
        assert self.hu is not None
        reach = max(self.reach_slices, 1)
        k0, k1 = max(c.k - reach, 0), min(c.k + reach + 1, self.stack.shape[0])
        hu, brain = self.hu[k0:k1], self.brain[k0:k1]
        # the fill's own limit (the voxels nearest the click): unlimited, one click on
        # fold 0's case 051 spilled 31 mL
        limit = max(1, int(FILL_LIMIT_ML_DEFAULT / (float(np.prod(self.stack.spacing)) / 1000.0)))
        result = fill_region(
            hu, (c.k - k0, c.row, c.col), HURange(), self.stack.spacing, limit, three_d=True, brain=brain
        )
        if result is not None:
            box = (slice(result.region.box[0].start + k0, result.region.box[0].stop + k0), *result.region.box[1:])
            mask[box] |= result.region.mask

    def _px(self, mm: float) -> tuple[int, int]:
        return tuple(int(math.ceil(mm / s)) for s in self.stack.spacing[1:])  # type: ignore[return-value]

    def _removed_by(self, mask: np.ndarray, fg: np.ndarray, clicks: Sequence[Click]) -> np.ndarray:
        """What negative clicks clear: near each click, and what the network no
        longer calls blood in the part of ``mask`` a click falls in (the parts are
        labelled once for all the clicks: a click is a few hundred ms at most)."""
        out = np.zeros(mask.shape, bool)
        inside = []
        for c in clicks:
            box, ball = self._near(c)
            out[box] |= ball & mask[box]
            if mask[c.k, c.row, c.col]:
                inside.append(c)
        if inside:  # the parts the clicks fall in: a one-voxel neighbourhood each
            points = [((slice(c.k, c.k + 1), slice(c.row, c.row + 1), slice(c.col, c.col + 1)), _ONE) for c in inside]
            out |= _parts_touching(mask, points) & ~fg
        return out


def _grown_box(mask: np.ndarray, shape, margin) -> tuple[slice, slice, slice]:
    idx = [np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != axis))) for axis in range(3)]
    return tuple(slice(max(int(i[0]) - m, 0), min(int(i[-1]) + 1 + m, n)) for i, m, n in zip(idx, margin, shape))  # type: ignore[return-value]


_ONE = np.ones((1, 1, 1), bool)


def _parts_touching(mask: np.ndarray, places: Sequence[tuple[tuple[slice, slice, slice], np.ndarray]]) -> np.ndarray:
    """The 26-connected parts of ``mask`` with a voxel in any of ``places`` (a box and the
    voxels of it that count). Parts are labelled inside ``mask``'s bounding box only: a
    whole 512 x 512 x 50 volume costs 60 ms a click, the bleed's box a few."""
    out = np.zeros(mask.shape, bool)
    if not mask.any():
        return out
    box0 = _grown_box(mask, mask.shape, (0, 0, 0))
    labels, _ = ndimage.label(mask[box0], structure=_STRUCT_26)
    wanted: set[int] = set()
    for box, ball in places:
        inter = tuple(slice(max(b.start, o.start), min(b.stop, o.stop)) for b, o in zip(box, box0))
        if any(i.start >= i.stop for i in inter):
            continue
        in_ball = ball[tuple(slice(i.start - b.start, i.stop - b.start) for i, b in zip(inter, box))]
        in_labels = labels[tuple(slice(i.start - o.start, i.stop - o.start) for i, o in zip(inter, box0))]
        wanted.update(int(v) for v in np.unique(in_labels[in_ball]) if v)
    sub = np.zeros(labels.shape, bool)
    _paint_labels(sub, labels, wanted)
    out[box0] = sub
    return out


def _paint_labels(out: np.ndarray, labels: np.ndarray, wanted: set[int]) -> None:
    """Set ``out`` where ``labels`` is one of ``wanted``, touching only their boxes
    (``np.isin`` over a whole 512 x 512 x 50 volume costs more than a click may)."""
    boxes = ndimage.find_objects(labels, max_label=max(wanted, default=0))
    for lab in wanted:
        box = boxes[lab - 1]
        if box is not None:
            out[box] |= labels[box] == lab


def prepare_clicks(
    hu: np.ndarray,
    stack: AxialStack,
    segmenter: Segmenter,
    token: CancelToken = NEVER_CANCELLED,
    brain: np.ndarray | None = None,
) -> Generator[Progress, None, ClickContext]:
    """Brain extraction (unless ``brain``, stack layout, is given), the working grid
    and the automatic probabilities of one case (``hu`` in the stack layout); a few
    seconds on 2 cores, on a worker."""
    from ..evaluation.inference import WORKING_BATCH  # loaded with the segmenter

    total = 3
    yield Progress(STAGE_PREPARE, 0, total, "brain extraction")
    canon = Volume(stack.from_stack(np.asarray(hu)), stack.canonical_affine)
    brain = brain_mask_canonical(canon) if brain is None else stack.from_stack(np.asarray(brain, bool))
    token.raise_if_cancelled()
    yield Progress(STAGE_PREPARE, 1, total, "the network's grid")
    conv = segmenter.convention
    image = conv.prepare(canon.data, brain)
    if conv.in_plane_mm <= 0 and conv.context_slices <= 0:
        raise InputError(
            "Click bleed needs a model that works on the 2.5-D grid (the default model or a ring "
            "model of the default preset); this model is one of the paper's networks."
        )
    grid = segmenter.working_grid(image, brain, canon.spacing)
    box_shape = (grid.crop[1] - grid.crop[0], grid.crop[3] - grid.crop[2], len(grid.slices))
    auto_w = np.zeros(box_shape, np.float32)
    for start in range(0, len(grid.slices), WORKING_BATCH):
        token.raise_if_cancelled()
        yield Progress(STAGE_PREPARE, 2, total, f"automatic segmentation, slice {start + 1} of {len(grid.slices)}")
        ks = grid.slices[start : start + WORKING_BATCH]
        auto_w[:, :, start : start + len(ks)] = np.moveaxis(segmenter.run_working_slices(grid, ks), 0, -1)
    context = ClickContext(
        segmenter,
        stack,
        stack.to_stack(brain),
        grid,
        auto_w.copy(),
        auto_w,
        np.zeros(stack.shape, np.float32),
        hu=np.asarray(hu),
    )
    context._to_stack([int(k) for k in grid.slices])
    yield Progress(STAGE_PREPARE, total, total, "ready")
    return context
