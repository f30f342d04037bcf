"""Every model on every site's test and normal scans, in one pass per scan.

Each CT and its manual mask are read once and predicted by every model with
:meth:`core.evaluation.inference.Segmenter.predict` (the same path as ``hemarelay
evaluate``); the scores are :class:`core.evaluation.inference.Evaluation` objects. For
Figure 3 the axial slice with the most manual hematoma of each site's largest
test hematoma is kept, with every model's mask on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generator

import numpy as np

from ..cases.datasets import site_split
from ..errors import InputError
from ..evaluation.inference import Evaluation, Segmenter
from ..evaluation.metrics import dice
from ..evaluation.scoring import score_cases
from ..imaging.orientation import to_canonical
from ..progress import CancelToken, Progress
from .plan import ExperimentPlan

STAGE = "Evaluating"


@dataclass(frozen=True)
class ExampleSlice:
    """One axial slice (canonical orientation) of one site's test case, for Figure 3."""

    site: str
    ct: np.ndarray  # HU, float32
    manual: np.ndarray  # uint8
    predicted: dict[str, np.ndarray]  # model -> uint8 mask
    spacing: tuple[float, float]  # mm along the slice's two axes

    def slice_dice(self, model: str) -> float:
        return dice(self.manual, self.predicted[model])


def _example_choice(cases) -> str | None:
    """The test case with the largest manual hematoma (counted in voxels)."""
    best, best_n = None, -1
    for c in cases:
        n = int(np.count_nonzero(np.asanyarray(_nib_load(c.mask_path))))
        if n > best_n:
            best, best_n = c.case_id, n
    return best


def _nib_load(path):
    import nibabel as nib

    return nib.load(str(path)).dataobj


def evaluate_all(
    plan: ExperimentPlan, token: CancelToken
) -> Generator[Progress, None, tuple[dict[str, dict[str, Evaluation]], list[ExampleSlice]]]:
    segmenters = {m: Segmenter.from_file(plan.model_path(m), backend=plan.backend) for m in plan.models}
    per_site = []
    for site in plan.sites:
        test = site_split(site.data, "test", require_masks=True)
        normal = site_split(site.data, "normal")
        if not test:
            raise InputError(f"{site.data}: no test/ cases (ct_NNN.nii.gz + mask_NNN.nii.gz) to evaluate on.")
        per_site.append((site, test, normal))
    examples: list[ExampleSlice] = []
    result: dict[str, dict[str, Evaluation]] = {m: {} for m in segmenters}
    for site, test, normal in per_site:
        example = _example_choice(test)
        masks: dict[str, np.ndarray] = {}

        def keep(case, ct, reference, model, mask, site=site, example=example, masks=masks):
            if case.case_id == example:
                masks[model] = mask
                if len(masks) == len(segmenters):
                    examples.append(_example_slice(site.name, ct, reference, dict(masks)))

        scores = yield from score_cases(test + normal, segmenters, STAGE, f"site {site.name}", token, keep)
        for model, seg in segmenters.items():
            result[model][site.name] = Evaluation.of(
                scores[model][: len(test)], scores[model][len(test) :], seg.weights.meta.sha256
            )
    return result, examples


def _example_slice(site: str, ct, manual: np.ndarray, masks: dict[str, np.ndarray]) -> ExampleSlice:
    canon, reo = to_canonical(ct)
    man = reo.to_canonical(manual)
    k = int(np.argmax(man.reshape(-1, man.shape[2]).sum(axis=0)))
    # rows = anterior-posterior from the top, columns = left-right: the usual axial view
    view = lambda a: np.rot90(a[:, :, k])  # noqa: E731
    return ExampleSlice(
        site,
        view(canon.data).astype(np.float32),
        view(man).astype(np.uint8),
        {m: view(reo.to_canonical(p)).astype(np.uint8) for m, p in masks.items()},
        (float(canon.spacing[1]), float(canon.spacing[0])),
    )
