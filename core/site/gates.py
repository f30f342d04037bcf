"""The rules a model version must pass before this site trusts it, in one place.

- It is judged only on reviewed cases it was not trained on (see
  :mod:`core.site.trained_cases`); with fewer than :data:`MIN_CASES_TO_JUDGE`
  such cases its score reads "not enough cases to judge", never a number to
  rely on.
- Floors: mean Dice on reviewed cases with hematoma at least
  :data:`DICE_FLOOR`; mean predicted volume on reviewed normal cases (every
  voxel a false positive) at most :data:`FALSE_POSITIVE_FLOOR_ML`.
- Not worse than the model in use (its Dice on its own judged cases).

A version that fails any rule is marked, and using it needs a confirmation
that names both scores (the application asks). Separately, a prediction
larger than :data:`PLAUSIBLE_MAX_ML` is flagged wherever it is shown and
accepting it whole asks first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .versions import LocalScore, ModelVersion

MIN_CASES_TO_JUDGE = 3
DICE_FLOOR = 0.30
FALSE_POSITIVE_FLOOR_ML = 5.0
# The largest spontaneous and traumatic bleeds in trials are around 150 mL; an
# adult brain is about 1,200 mL. A "hematoma" above this is almost surely the
# model segmenting brain, not blood.
PLAUSIBLE_MAX_ML = 200.0


def enough(score: LocalScore | None) -> bool:
    return score is not None and score.n_cases >= MIN_CASES_TO_JUDGE


def describe(score: LocalScore | None) -> str:
    """A score as the user reads it (the table, the offer, the confirmation)."""
    if score is None:
        return "not evaluated here yet"
    left_out = (
        f"; {score.n_excluded} reviewed case(s) left out because this site trained on them" if score.n_excluded else ""
    )
    if not enough(score):
        return (
            f"not enough cases to judge: {score.n_cases} reviewed case(s) not used for training "
            f"(at least {MIN_CASES_TO_JUDGE} needed){left_out}"
        )
    parts = []
    if score.n_lesion_cases:
        parts.append(f"Dice {score.dice_on_lesions:.3f} on {score.n_lesion_cases} case(s) with hematoma")
    if score.n_normal_cases:
        parts.append(f"{score.false_positive_ml:.1f} mL false positives on {score.n_normal_cases} normal case(s)")
    parts.append(f"volume error {score.mean_abs_volume_error_ml:.1f} mL")
    return ", ".join(parts) + f" (reviewed cases not used for training{left_out})"


@dataclass(frozen=True)
class Verdict:
    reasons: tuple[str, ...]  # empty: nothing against using it

    @property
    def ok(self) -> bool:
        return not self.reasons

    def text(self) -> str:
        return "; ".join(self.reasons)


def judge(candidate: ModelVersion, current: ModelVersion | None) -> Verdict:
    """What speaks against using ``candidate`` instead of ``current`` at this site."""
    s = candidate.score
    reasons: list[str] = []
    if s is None:
        reasons.append("not evaluated on this site's reviewed cases yet")
    elif not enough(s):
        reasons.append(describe(s))
    else:
        if s.n_lesion_cases and s.dice_on_lesions < DICE_FLOOR:
            reasons.append(f"Dice {s.dice_on_lesions:.3f} is below the floor of {DICE_FLOOR:.2f}")
        if s.n_normal_cases and s.false_positive_ml > FALSE_POSITIVE_FLOOR_ML:
            reasons.append(
                f"{s.false_positive_ml:.1f} mL of false positives on normal cases is above "
                f"the floor of {FALSE_POSITIVE_FLOOR_ML:g} mL"
            )
        c = current.score if current is not None and current.version != candidate.version else None
        if enough(c) and s.n_lesion_cases and c.n_lesion_cases and s.dice_on_lesions < c.dice_on_lesions:
            reasons.append(
                f"its Dice {s.dice_on_lesions:.3f} is lower than the model in use "
                f"({current.short()}: {c.dice_on_lesions:.3f})"
            )
    return Verdict(tuple(reasons))


def implausible(volume_ml: float | None) -> str:
    """ "" for a plausible predicted hematoma volume, else a warning saying why not."""
    if volume_ml is None or not math.isfinite(volume_ml) or volume_ml <= PLAUSIBLE_MAX_ML:
        return ""
    return (
        f"implausible: {volume_ml:.0f} mL is more than {PLAUSIBLE_MAX_ML:g} mL, larger than any "
        "hematoma; the model has probably segmented brain. Check before using it."
    )


def confirmation(candidate: ModelVersion, current: ModelVersion | None, verdict: Verdict) -> str:
    """The question asked before a marked version is used: both scores, and why it is marked."""
    now = (
        "No model is in use now."
        if current is None
        else f"The model in use, {current.label()}: {describe(current.score)}."
    )
    return (
        f"Model {candidate.label()}: {describe(candidate.score)}.\n\n{now}\n\n"
        f"Why it is marked: {verdict.text()}.\n\nIts predictions would be computed for every case "
        "you open, beside the prediction each case has now; a case's prediction is replaced only "
        f"when you choose the new one for that case. Use {candidate.short()} anyway?"
    )
