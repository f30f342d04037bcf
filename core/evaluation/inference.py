"""Whole-volume hematoma prediction in the scan's own geometry.

load_ct -> canonical RAS orientation -> brain mask -> network input (HU window,
background outside the brain; :class:`~core.model.input.InputConvention`) ->
the network slice by slice on each axial slice's brain bounding box -> keep the
probabilities inside the brain -> threshold 0.5 -> drop 3-D components under
27 voxels (the paper's evaluation) -> back to the source grid.

Each slice is cropped to its brain's bounding box plus the network's receptive
radius (16 pixels for the Inception network). Every output pixel inside the
brain then sees exactly the inputs it would see on the whole slice, so the
result equals the whole-slice prediction (tested), while about two thirds of
the pixels of a 512x512 CT slice are never computed. Slices without brain are
skipped (their probability is 0). The U-Net option runs on whole slices (its
pooling makes the output depend on where a crop starts).

The product network (``unet25d``, preset ``default``) works on a resampled grid:
the prepared volume is resampled in-plane to the convention's ``in_plane_mm``,
each slice is given with its neighbours (2.5-D), all slices share the brain's
bounding box on that grid, and the probabilities are resampled back to the
canonical grid before the brain mask, the threshold and the clean-up, which are
the same for every network. On that grid each slice is also run mirrored left to
right and the two probabilities averaged (the head is nearly symmetric, its
artefacts are not: on the validation split this halved the blood painted into
normal scans); the paper's networks run once, as the paper did.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Generator, Iterable, Sequence

import numpy as np

from ..cases.case_files import case_files
from ..cases.datasets import site_split
from ..cases.provenance import write_provenance
from ..errors import InputError
from ..imaging.brain import brain_mask
from ..imaging.orientation import to_canonical
from ..imaging.volume import Volume
from ..io import load_ct, save_mask, save_volume
from ..model.architectures import guidance_channels
from ..model.fast import SliceEngine, make_engine
from ..model.inception import RECEPTIVE_RADIUS
from ..model.input import THRESHOLD
from ..model.numerics import flush_denormals
from ..model.weights import LoadedWeights, load_weights
from ..progress import NEVER_CANCELLED, CancelToken, EtaClock, Progress
from .metrics import pearson, remove_small_components, volume_ml
from .scoring import CaseScore, score_cases

MIN_COMPONENT_VOXELS = 27
# The steps inside one case: fine-grained progress (the CLI shows it on its status line only).
STAGE_BRAIN, STAGE_SEGMENT, STAGE_CLEAN = "Brain extraction", "Segmenting", "Cleaning up"
CASE_STAGES = (STAGE_BRAIN, STAGE_SEGMENT, STAGE_CLEAN)
WORKING_MARGIN = 16  # pixels of background kept around the brain on the working grid
WORKING_BATCH = 4  # slices per network call on the working grid


@dataclass(frozen=True)
class Prediction:
    mask: np.ndarray  # uint8 0/1 on the CT's own grid
    probabilities: np.ndarray | None  # float32 on the CT's grid (0 outside the brain), if asked
    volume_ml: float
    slices_run: int  # axial slices that held brain
    pixels_run: int  # network output pixels computed
    seconds: float


@dataclass(frozen=True)
class WorkingGrid:
    """A prepared volume on a 2.5-D network's working grid (canonical axes)."""

    image: np.ndarray  # network input, background outside the brain
    slices: np.ndarray  # indices of the axial slices that hold brain
    crop: tuple[int, int, int, int]  # i0, i1, j0, j1: the box every slice is run on
    spacing: tuple[float, float, float]  # mm of one voxel of this grid

    @property
    def box(self) -> tuple[slice, slice]:
        i0, i1, j0, j1 = self.crop
        return slice(i0, i1), slice(j0, j1)


@dataclass(frozen=True)
class SlicePlan:
    k: int
    i0: int
    i1: int
    j0: int
    j1: int

    @property
    def pixels(self) -> int:
        return (self.i1 - self.i0) * (self.j1 - self.j0)


def plan_slices(brain: np.ndarray, margin: int | None = RECEPTIVE_RADIUS) -> list[SlicePlan]:
    """Per axial slice (``[:, :, k]``) holding brain: its bounding box grown by
    ``margin`` pixels, or the whole slice when ``margin`` is None."""
    plans = []
    ni, nj, _ = brain.shape
    rows = brain.any(axis=1)  # (i, k)
    cols = brain.any(axis=0)  # (j, k)
    for k in np.flatnonzero(rows.any(axis=0)):
        if margin is None:
            plans.append(SlicePlan(int(k), 0, ni, 0, nj))
            continue
        ii, jj = np.flatnonzero(rows[:, k]), np.flatnonzero(cols[:, k])
        plans.append(
            SlicePlan(
                int(k),
                max(int(ii[0]) - margin, 0),
                min(int(ii[-1]) + 1 + margin, ni),
                max(int(jj[0]) - margin, 0),
                min(int(jj[-1]) + 1 + margin, nj),
            )
        )
    return plans


class Segmenter:
    """A loaded network ready to segment volumes (build once, reuse)."""

    def __init__(
        self,
        weights: LoadedWeights,
        backend: str = "auto",
        threads: int | None = None,
        threshold: float = THRESHOLD,
        min_component_voxels: int = MIN_COMPONENT_VOXELS,
        mirror: bool = True,
    ) -> None:
        self.weights = weights
        self.convention = weights.meta.input
        flush_denormals()
        self.engine: SliceEngine = make_engine(weights.network(), backend, threads)
        self.threshold = threshold
        self.min_component_voxels = min_component_voxels
        self.mirror = mirror  # working-grid networks: average with the left-right mirror
        self.guidance_channels = guidance_channels(weights.meta.architecture)  # 2 for click networks
        # Cropping is exact for the Inception network (stride 1, receptive radius 16).
        # The U-Net's pooling grid and larger field depend on where a slice starts,
        # so it runs on whole slices.
        self.margin = RECEPTIVE_RADIUS if weights.meta.architecture == "inception" else None

    @classmethod
    def from_file(cls, path: str | Path, **kw) -> "Segmenter":
        return cls(load_weights(path), **kw)

    def probabilities_canonical(
        self,
        image: np.ndarray,
        brain: np.ndarray,
        token: CancelToken = NEVER_CANCELLED,
        spacing: tuple[float, ...] | None = None,
    ) -> Generator[Progress, None, tuple[np.ndarray, list[SlicePlan]]]:
        """Network probabilities on a canonical volume (``image`` already prepared).

        ``spacing`` (mm) is needed when the network works on a resampled grid.
        """
        conv = self.convention
        if conv.in_plane_mm > 0 or conv.context_slices > 0:
            if spacing is None and conv.in_plane_mm > 0:
                raise ValueError("this network works on a resampled grid: pass the voxel spacing")
            return (yield from self._probabilities_working_grid(image, brain, spacing, token))
        prob = np.zeros(image.shape, np.float32)
        plans = plan_slices(brain, self.margin)
        clock, total = EtaClock(), sum(p.pixels for p in plans)
        done = 0
        for n, p in enumerate(plans):
            token.raise_if_cancelled()
            yield Progress(STAGE_SEGMENT, done, total, f"slice {n + 1} of {len(plans)}", clock.eta(done, total))
            crop = image[p.i0 : p.i1, p.j0 : p.j1, p.k]
            prob[p.i0 : p.i1, p.j0 : p.j1, p.k] = self.engine(crop[None, None])[0, 0]
            done += p.pixels
        prob *= brain
        return prob, plans

    def _probabilities_working_grid(
        self, image: np.ndarray, brain: np.ndarray, spacing: tuple[float, ...] | None, token: CancelToken
    ) -> Generator[Progress, None, tuple[np.ndarray, list[SlicePlan]]]:
        """The 2.5-D network on the working grid, then back to the canonical grid.

        All slices share one crop: the brain's bounding box on the working grid
        plus :data:`WORKING_MARGIN` pixels (the background outside the brain is
        constant, so the network sees what it saw in training patches), run a
        few slices per call.
        """
        grid = self.working_grid(image, brain, spacing)
        prob_w = np.zeros(grid.image.shape, np.float32)
        plans = [SlicePlan(int(k), *grid.crop) for k in grid.slices]
        clock, total = EtaClock(), len(grid.slices)
        for start in range(0, total, WORKING_BATCH):
            token.raise_if_cancelled()
            yield Progress(STAGE_SEGMENT, start, total, f"slice {start + 1} of {total}", clock.eta(start, total))
            batch = grid.slices[start : start + WORKING_BATCH]
            prob_w[grid.box][:, :, batch] = np.moveaxis(self.run_working_slices(grid, batch), 0, -1)
        return self.to_canonical(grid, prob_w, brain), plans

    def working_grid(self, image: np.ndarray, brain: np.ndarray, spacing: tuple[float, ...] | None) -> "WorkingGrid":
        """A prepared canonical volume on the network's working grid, with the
        slices that hold brain and the crop every slice shares."""
        conv = self.convention
        spacing = tuple(float(v) for v in (spacing or (1.0, 1.0, 1.0)))
        work = conv.to_working(image, spacing)
        brain_w = conv.mask_to_working(brain, spacing)
        work[~brain_w] = conv.background_hu
        ks = np.flatnonzero(brain.any(axis=(0, 1)))
        crop = (0, 0, 0, 0)
        if ks.size:
            ii = np.flatnonzero(brain_w.any(axis=(1, 2)))
            jj = np.flatnonzero(brain_w.any(axis=(0, 2)))
            if ii.size == 0:  # brain thinner than a working voxel: use the whole slice
                ii, jj = np.arange(work.shape[0]), np.arange(work.shape[1])
            crop = (
                max(int(ii[0]) - WORKING_MARGIN, 0),
                min(int(ii[-1]) + 1 + WORKING_MARGIN, work.shape[0]),
                max(int(jj[0]) - WORKING_MARGIN, 0),
                min(int(jj[-1]) + 1 + WORKING_MARGIN, work.shape[1]),
            )
        grid_mm = tuple(s * n / w for s, n, w in zip(spacing, image.shape, work.shape))
        return WorkingGrid(work, ks, crop, grid_mm)  # type: ignore[arg-type]

    def run_working_slices(self, grid: "WorkingGrid", ks: np.ndarray, guidance: np.ndarray | None = None) -> np.ndarray:
        """Probabilities (len(ks), crop rows, crop cols) of working-grid slices ``ks``.

        ``guidance`` (len(ks), 2, crop rows, crop cols): a reviewer's clicks, for
        networks that take them; None is no click (the automatic use). Each
        slice also runs mirrored left to right, in the same call, and the two
        are averaged (see the module docstring).
        """
        x = self.convention.stack(grid.image[grid.box], ks)
        if self.guidance_channels:
            g = np.zeros((len(ks), self.guidance_channels, *x.shape[2:]), np.float32) if guidance is None else guidance
            x = np.concatenate([x, g.astype(np.float32, copy=False)], axis=1)
        if self.mirror:  # one call for both: the mirrored slices follow the slices
            both = self.engine(np.concatenate([x, x[:, :, ::-1]]))
            out = 0.5 * (both[: len(ks)] + both[len(ks) :, :, ::-1])
        else:
            out = self.engine(x)
        return out[:, 0]

    def to_canonical(self, grid: "WorkingGrid", prob_w: np.ndarray, brain: np.ndarray) -> np.ndarray:
        """Working-grid probabilities (all slices) back on the canonical grid, inside the brain."""
        conv = self.convention
        prob = np.clip(conv.from_working(prob_w, brain.shape), 0.0, 1.0) if conv.in_plane_mm > 0 else prob_w
        prob *= brain
        return prob

    def predict(
        self, ct: Volume, token: CancelToken = NEVER_CANCELLED, keep_probabilities: bool = False
    ) -> Generator[Progress, None, Prediction]:
        t0 = time.monotonic()
        yield Progress(STAGE_BRAIN, 0, 0, ct.name)
        canon, reo = to_canonical(ct)
        brain = brain_mask(canon)
        token.raise_if_cancelled()
        image = self.convention.prepare(canon.data, brain)
        prob, plans = yield from self.probabilities_canonical(image, brain, token, canon.spacing)
        yield Progress(STAGE_CLEAN, 0, 0, "small components")
        mask = remove_small_components(prob > self.threshold, self.min_component_voxels)
        mask_src = reo.to_source(mask.astype(np.uint8))
        prob_src = reo.to_source(prob) if keep_probabilities else None
        return Prediction(
            mask_src,
            prob_src,
            volume_ml(mask_src, ct.voxel_volume_ml),
            len(plans),
            sum(p.pixels for p in plans),
            time.monotonic() - t0,
        )


# ------------------------------------------------------------------ file level
@dataclass(frozen=True)
class PredictedFile:
    ct_path: Path
    mask_path: Path
    probabilities_path: Path | None
    prediction: Prediction


def predict_files(
    ct_paths: Sequence[str | Path],
    segmenter: Segmenter,
    out_dir: str | Path | None = None,
    probabilities: bool = False,
    token: CancelToken = NEVER_CANCELLED,
) -> Generator[Progress, None, list[PredictedFile]]:
    """Predict each CT and write its mask (and probability map); returns what was written."""
    out = Path(out_dir) if out_dir is not None else None
    paths = [Path(p) for p in ct_paths]
    targets = [(f.prediction, f.probabilities) for f in (case_files(p, out) for p in paths)]
    clash = _first_duplicate(t[0] for t in targets)
    if clash is not None:
        raise InputError(f"two inputs would both write {clash}; give them distinct names.")
    results = []
    for n, (path, (mask_path, prob_path)) in enumerate(zip(paths, targets)):
        yield Progress("Loading", n, len(paths), f"{path.name} ({n + 1} of {len(paths)})")
        ct = load_ct(path)
        pred = yield from segmenter.predict(ct, token, keep_probabilities=probabilities)
        token.raise_if_cancelled()
        save_mask(pred.mask, ct, mask_path)
        write_provenance(mask_path, segmenter.weights.meta)
        if probabilities:
            save_volume(ct.with_data(pred.probabilities), prob_path)
        results.append(PredictedFile(path, mask_path, prob_path if probabilities else None, pred))
    return results


def _first_duplicate(items: Iterable[Path]) -> Path | None:
    seen: set[Path] = set()
    for p in items:
        r = p.resolve()
        if r in seen:
            return p
        seen.add(r)
    return None


# ------------------------------------------------------------------ evaluation
@dataclass(frozen=True)
class Evaluation:
    cases: list[CaseScore]
    normal: list[CaseScore]  # scans without hematoma: only auto_ml matters
    mean_dice: float | None
    pearson_r: float | None
    model_sha256: str

    @staticmethod
    def of(cases: list[CaseScore], normal: list[CaseScore], model_sha256: str) -> "Evaluation":
        """Mean Dice and the Pearson r of the volumes over the test cases."""
        mean = float(np.mean([c.dice for c in cases])) if cases else None
        r = pearson([c.manual_ml for c in cases], [c.auto_ml for c in cases]).r if cases else float("nan")
        return Evaluation(cases, normal, mean, None if not np.isfinite(r) else float(r), model_sha256)

    def to_json_dict(self) -> dict:
        return {
            "cases": [
                {"case": c.case, "dice": c.dice, "manual_ml": c.manual_ml, "auto_ml": c.auto_ml} for c in self.cases
            ],
            "mean_dice": self.mean_dice,
            "pearson_r": self.pearson_r,
            "normal": [{"case": c.case, "auto_ml": c.auto_ml} for c in self.normal],
            "model_sha256": self.model_sha256,
        }


def evaluate_site(
    site_dir: str | Path, segmenter: Segmenter, token: CancelToken = NEVER_CANCELLED
) -> Generator[Progress, None, Evaluation]:
    """Dice and volumes on ``site_dir/test`` (and ``site_dir/normal`` when present)."""
    site_dir = Path(site_dir)
    test = site_split(site_dir, "test", require_masks=True)
    normal = site_split(site_dir, "normal")
    if not test and not normal:
        raise InputError(f"{site_dir}: no test/ or normal/ folder with ct_NNN.nii.gz files.")
    scores = (yield from score_cases(test + normal, {"model": segmenter}, "Evaluating", token=token))["model"]
    return Evaluation.of(scores[: len(test)], scores[len(test) :], segmenter.weights.meta.sha256)
