"""A model version measured on this site's reviewed cases before anyone uses it:
Dice and absolute volume error against the site's own masks, on the reviewed
cases the version was not trained on (:func:`held_out_cases`)."""

from __future__ import annotations

from pathlib import Path
from typing import Generator, Sequence

import numpy as np

from ..cases.case_files import Case
from ..errors import InputError
from ..evaluation.scoring import score_cases
from ..progress import NEVER_CANCELLED, CancelToken, Progress
from .trained_cases import case_key
from .versions import LocalScore, _now

STAGE_EVALUATE = "Evaluating model"


def held_out_cases(cases: Sequence[Case], trained: set[str]) -> tuple[list[Case], int]:
    """The cases not in ``trained`` (case keys, :func:`core.site.trained_cases.case_key`),
    and how many were left out."""
    kept = [c for c in cases if case_key(c.ct_path) not in trained]
    return kept, len(cases) - len(kept)


def not_enough_cases(n_excluded: int, n_held_out: int = 0) -> LocalScore:
    """The score of a version with too few reviewed cases left to judge it on
    (:data:`core.site.gates.MIN_CASES_TO_JUDGE`): no number, nothing predicted."""
    return LocalScore(n_held_out, float("nan"), float("nan"), (), _now(), n_excluded)


def score_model(
    model_path: Path, cases: Sequence[Case], label: str = "", token: CancelToken = NEVER_CANCELLED, n_excluded: int = 0
) -> Generator[Progress, None, LocalScore]:
    from ..evaluation.inference import Segmenter

    if not cases:
        raise InputError(
            "No reviewed cases with saved masks at this site to evaluate the model on; "
            "mark some cases 'reviewed' first."
        )
    scores = yield from score_cases(cases, {label: Segmenter.from_file(model_path)}, STAGE_EVALUATE, label, token)
    mine = tuple(scores[label])
    return LocalScore(
        len(mine),
        float(np.mean([s.dice for s in mine])),
        float(np.mean([s.abs_volume_error_ml for s in mine])),
        mine,
        _now(),
        n_excluded,
    )


def score_model_in_child(
    model_path: Path, cases: Sequence[Case], label: str, token: CancelToken, n_excluded: int = 0
) -> Generator[Progress, None, LocalScore]:
    """:func:`score_model` in a child process (the desktop application's way)."""
    from ..child_process import run_in_child

    return (
        yield from run_in_child(
            _score_counting_excluded,
            model_path,
            list(cases),
            label,
            n_excluded,
            token=token,
            what="The evaluation process",
        )
    )


def _score_counting_excluded(
    model_path: Path, cases: list[Case], label: str, n_excluded: int, token: CancelToken
) -> Generator[Progress, None, LocalScore]:
    return (yield from score_model(model_path, cases, label, token, n_excluded))
