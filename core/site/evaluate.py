"""A model version measured on this site's reviewed cases before anyone uses it:
Dice and absolute volume error against the site's own masks."""
from __future__ import annotations

from pathlib import Path
from typing import Generator, Sequence

import numpy as np

from ..case_files import Case
from ..errors import InputError
from ..progress import NEVER_CANCELLED, CancelToken, Progress
from ..scoring import score_cases
from ..worklist import CaseStatus, Worklist, WorklistCase
from .versions import LocalScore, _now

STAGE_EVALUATE = "Evaluating model"
REVIEWED = (CaseStatus.REVIEWED, CaseStatus.APPROVED)


def reviewed_cases(wl: Worklist) -> list[Case]:
    """Cases whose saved mask a clinician reviewed (or approved for training)."""
    return [c.case for c in wl.cases if _reviewed(c)]


def _reviewed(c: WorklistCase) -> bool:
    return c.has_mask and c.status is not None and c.status.status in REVIEWED and c.unsaved is None


def score_model(model_path: Path, cases: Sequence[Case], label: str = "",
                token: CancelToken = NEVER_CANCELLED) -> Generator[Progress, None, LocalScore]:
    from ..inference import Segmenter

    if not cases:
        raise InputError("No reviewed cases with saved masks at this site to evaluate the model on; "
                         "mark some cases 'reviewed' first.")
    scores = yield from score_cases(cases, {label: Segmenter.from_file(model_path)}, STAGE_EVALUATE, label,
                                    token)
    mine = tuple(scores[label])
    return LocalScore(len(mine), float(np.mean([s.dice for s in mine])),
                      float(np.mean([s.abs_volume_error_ml for s in mine])), mine, _now())


def score_model_in_child(model_path: Path, cases: Sequence[Case], label: str, token: CancelToken
                         ) -> Generator[Progress, None, LocalScore]:
    """:func:`score_model` in a child process (the desktop application's way)."""
    from ..child_process import run_in_child
    return (yield from run_in_child(score_model, model_path, list(cases), label, token=token,
                                    what="The evaluation process"))
