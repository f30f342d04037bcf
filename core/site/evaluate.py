"""A model version measured on this site's reviewed cases before anyone uses it:
Dice and absolute volume error against the site's own masks."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Generator, Sequence

import numpy as np

from ..errors import InputError
from ..io import load_ct, load_mask
from ..metrics import dice, volume_ml
from ..progress import NEVER_CANCELLED, CancelToken, EtaClock, Progress
from ..worklist import CaseStatus, Worklist, WorklistCase
from .versions import CaseScore, LocalScore, _now

STAGE_EVALUATE = "Evaluating model"
REVIEWED = (CaseStatus.REVIEWED, CaseStatus.APPROVED)


@dataclass(frozen=True)
class EvalCase:
    label: str
    ct: Path
    mask: Path


def reviewed_cases(wl: Worklist) -> list[EvalCase]:
    """Cases whose saved mask a clinician reviewed (or approved for training)."""
    return [EvalCase(c.label, c.paths.ct, c.paths.mask) for c in wl.cases if _reviewed(c)]


def _reviewed(c: WorklistCase) -> bool:
    return c.has_mask and c.status is not None and c.status.status in REVIEWED and c.unsaved is None


def score_model(model_path: Path, cases: Sequence[EvalCase], label: str = "",
                token: CancelToken = NEVER_CANCELLED) -> Generator[Progress, None, LocalScore]:
    from ..inference import Segmenter

    if not cases:
        raise InputError("No reviewed cases with saved masks at this site to evaluate the model on; "
                         "mark some cases 'reviewed' first.")
    seg = Segmenter.from_file(model_path)
    clock = EtaClock()
    scores: list[CaseScore] = []
    for n, case in enumerate(cases):
        token.raise_if_cancelled()
        yield Progress(STAGE_EVALUATE, n, len(cases), f"{label} case {case.label}".strip(),
                       clock.eta(n, len(cases)))
        ct = load_ct(case.ct)
        ref = load_mask(case.mask, ct).data
        pred = yield from seg.predict(ct, token)
        scores.append(CaseScore(case.label, dice(ref, pred.mask), volume_ml(ref, ct.voxel_volume_ml),
                                pred.volume_ml))
    yield Progress(STAGE_EVALUATE, len(cases), len(cases), label)
    return LocalScore(len(scores), float(np.mean([s.dice for s in scores])),
                      float(np.mean([abs(s.predicted_ml - s.volume_ml) for s in scores])),
                      tuple(scores), _now())


def score_model_in_child(model_path: Path, cases: Sequence[EvalCase], label: str, token: CancelToken
                         ) -> Generator[Progress, None, LocalScore]:
    """:func:`score_model` in a child process (the desktop application's way)."""
    from ..child_process import run_in_child
    return (yield from run_in_child(score_model, model_path, list(cases), label, token=token,
                                    what="The evaluation process"))
