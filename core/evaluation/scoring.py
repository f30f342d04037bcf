"""Scoring models on cases: the one score type and the one scoring loop.

``hemarelay evaluate`` (:func:`core.evaluation.inference.evaluate_site`), the site's check
of a new model version on its reviewed cases
(:func:`core.site.evaluate.score_model`) and the paper's experiment
(:func:`core.experiment.scoring.evaluate_all`) all score with
:func:`score_cases`: each CT and its reference mask are read once and every
model predicts it; a case without a mask is a normal scan (reference empty).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Generator, Mapping, Protocol, Sequence

import numpy as np

from ..cases.case_files import Case
from ..imaging.volume import Volume
from ..io import load_ct, load_mask
from ..progress import NEVER_CANCELLED, CancelToken, EtaClock, Progress
from .metrics import dice, volume_ml


@dataclass(frozen=True)
class CaseScore:
    case: str  # the case id or worklist label (stays on this machine)
    dice: float  # against the reference (for a normal scan: 1 when nothing was found, else 0)
    manual_ml: float  # the reference mask's volume (0 for a normal scan)
    auto_ml: float  # the model's

    @property
    def abs_volume_error_ml(self) -> float:
        return abs(self.auto_ml - self.manual_ml)

    @staticmethod
    def from_json(d: Mapping) -> "CaseScore":
        """Also reads the field names of the site's model records before this type was
        shared (label, volume_ml, predicted_ml)."""
        return CaseScore(
            str(d.get("case", d.get("label", ""))),
            float(d["dice"]),
            float(d.get("manual_ml", d.get("volume_ml", 0.0))),
            float(d.get("auto_ml", d.get("predicted_ml", 0.0))),
        )


class Predictor(Protocol):  # core.evaluation.inference.Segmenter
    def predict(self, ct: Volume, token: CancelToken) -> Generator[Progress, None, object]: ...


OnPrediction = Callable[[Case, Volume, np.ndarray, str, np.ndarray], None]


def score_cases(
    cases: Sequence[Case],
    models: Mapping[str, Predictor],
    stage: str,
    label: str = "",
    token: CancelToken = NEVER_CANCELLED,
    on_prediction: OnPrediction | None = None,
) -> Generator[Progress, None, dict[str, list[CaseScore]]]:
    """Every model on every case: ``{model: [CaseScore per case, in order]}``.
    ``on_prediction(case, ct, reference, model, predicted_mask)`` sees each mask
    (the experiment keeps a slice of some for its figure)."""
    scores: dict[str, list[CaseScore]] = {m: [] for m in models}
    total, done, clock = len(cases) * len(models), 0, EtaClock()
    for n, case in enumerate(cases):
        token.raise_if_cancelled()
        ct = load_ct(case.ct_path)
        reference = load_mask(case.mask_path, ct).data if case.mask_path is not None else np.zeros(ct.shape, np.uint8)
        manual_ml = volume_ml(reference, ct.voxel_volume_ml)
        for model, predictor in models.items():
            token.raise_if_cancelled()
            who = f"{model} on " if len(models) > 1 else ""
            yield Progress(
                stage,
                done,
                total,
                f"{label} {who}case {case.case_id} ({n + 1} of {len(cases)})".strip(),
                clock.eta(done, total),
            )
            pred = yield from predictor.predict(ct, token)
            mask = pred.mask  # type: ignore[attr-defined]
            scores[model].append(CaseScore(case.case_id, dice(reference, mask), manual_ml, pred.volume_ml))  # type: ignore[attr-defined]
            if on_prediction is not None:
                on_prediction(case, ct, reference, model, mask)
            done += 1
    yield Progress(stage, total, total, label or "done")
    return scores
