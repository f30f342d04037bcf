"""Model gates: a version is judged only on reviewed cases it was not trained on, with
enough of them, above floors and not below the model in use; training refuses too few
approved cases before any process starts (real CT-ICH cases, real tiny training)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from core.cases.worklist import CaseStatus, StatusStore, scan_folder
from core.errors import InputError
from core.progress import CancelToken, run_to_end
from core.site.evaluate import held_out_cases, not_enough_cases, score_model
from core.site.gates import MIN_CASES_TO_JUDGE, PLAUSIBLE_MAX_ML, describe, implausible, judge
from core.site.trained_cases import TrainedCases, case_key
from core.site.training import plan_turn, train_my_turn
from core.site.versions import CaseScore, LocalScore, ModelStore, ModelVersion

from ring_helpers import TINY_TURN, solo_site


@pytest.fixture(autouse=True)
def _state(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))


def _site(tmp_path: Path, site_a: Path, cases=("067", "052")) -> Path:
    folder = tmp_path / "site"
    folder.mkdir()
    for case in cases:
        for k in ("ct", "mask"):
            (folder / f"{k}_{case}.nii.gz").symlink_to(site_a / "test" / f"{k}_{case}.nii.gz")
    return folder


def _version(n: int, score: LocalScore | None) -> ModelVersion:
    return ModelVersion(
        n, "a", 0, n - 1, "f" * 64, "", f"v{n}.safetensors", "inception-ds4", "r", score=score, tensors_sha256="e" * 64
    )


def _score(dices, fp=(), n_excluded=0) -> LocalScore:
    cases = tuple(CaseScore(f"c{i}", d, 10.0, 10.0) for i, d in enumerate(dices)) + tuple(
        CaseScore(f"n{i}", 1.0 if v == 0 else 0.0, 0.0, v) for i, v in enumerate(fp)
    )
    return LocalScore(len(cases), sum(c.dice for c in cases) / len(cases), 0.0, cases, "", n_excluded)


def test_training_on_one_case_is_refused_then_the_version_cannot_be_judged(tmp_path, site_a):
    """The scenario of issue 14: one case approved, "Train my turn", v1 scored on the case
    it had just trained on. Now: refused before any process starts; forced with a minimum
    of 1, v1 is judged on no case it was not trained on: "not enough cases to judge"."""
    folder = _site(tmp_path, site_a)
    StatusStore(folder).set("067", CaseStatus.APPROVED, "dr_a")
    setup = solo_site(folder)
    with pytest.raises(InputError, match=r"Only 1 case\(s\) .* needs at least 5.*nothing was started"):
        plan_turn(setup)
    with pytest.raises(InputError, match="needs at least 5"):
        run_to_end(train_my_turn(setup, CancelToken()))
    assert not (tmp_path / "state" / "hemarelay" / "local-ring").exists()  # no ring, no lease touched

    # reports filed at the site (patient details, reviewer) before the turn...
    from core.cases.worklist import report_jobs
    from core.reports import export_reports

    jobs, _ = report_jobs(scan_folder(folder).cases, use_prediction=False)
    run_to_end(export_reports(jobs, folder / "reports" / "volumes.csv", folder / "reports"))
    assert (folder / "reports" / "hematoma_report_067.pdf").is_file()

    forced = setup.with_(overrides=TINY_TURN + ("min_approved=1",))
    plan = plan_turn(forced)
    assert [c.case_id for c in plan.cases] == ["067"] and "on 1 case(s)" in plan.describe()
    outcome = run_to_end(train_my_turn(forced, CancelToken()))
    assert outcome.trained and outcome.record.version == 1
    store = ModelStore.for_ring(outcome.manifest.ring_id)
    assert store.trained_cases().used_by(1) == {case_key(folder / "ct_067.nii.gz")}
    # ...never leave through the ring: nothing but weights, optimizer state and scalars there
    from core.model.architectures import build_network

    from privacy_scan import forbidden_terms, scan_server_dir

    ring = tmp_path / "state" / "hemarelay" / "local-ring" / "solo"
    shapes = {k: tuple(v.shape) for k, v in build_network("inception", 4).state_dict().items()}
    assert scan_server_dir(ring, forbidden_terms(folder), shapes) == []
    assert not [p for p in ring.rglob("*") if p.suffix in (".pdf", ".csv")]
    assert "hematoma_report_067.pdf" in forbidden_terms(folder)

    reviewed = scan_folder(folder).reviewed()
    assert [c.case_id for c in reviewed] == ["067"]  # approved counts as reviewed
    held, n_excluded = held_out_cases(reviewed, store.trained_cases().used_by(1))
    assert held == [] and n_excluded == 1
    score = not_enough_cases(n_excluded)
    v1 = _version(1, score)
    verdict = judge(v1, None)
    assert not verdict.ok and "not enough cases to judge" in verdict.text()
    assert "1 reviewed case(s) left out because this site trained on them" in describe(score)
    assert "Dice" not in describe(score)  # no number to rely on


def test_scores_leave_out_the_cases_of_every_earlier_own_turn(tmp_path, site_a):
    """Cyclic weight transfer: v3 (site b's turn) carries what site a's v1 learnt."""
    folder = _site(tmp_path, site_a)
    for case in ("067", "052"):
        StatusStore(folder).set(case, CaseStatus.REVIEWED, "dr_a")
    record = TrainedCases(tmp_path / "models")
    record.record(1, [folder / "ct_067.nii.gz"])
    reviewed = scan_folder(folder).reviewed()
    for version, left in ((1, ["052"]), (2, ["052"]), (5, ["052"])):
        held, n = held_out_cases(reviewed, record.used_by(version))
        assert [c.case_id for c in held] == left and n == 1
    record.record(4, [folder / "ct_052.nii.gz"])
    assert held_out_cases(reviewed, record.used_by(3))[1] == 1
    assert held_out_cases(reviewed, record.used_by(4)) == ([], 2)
    assert record.own_versions() == {1, 4}


def test_a_real_score_counts_the_left_out_cases(tmp_path, site_a):
    """score_model on a held-out real case keeps the count of the cases left out."""
    from core.model.architectures import build_network
    from core.training.ring_turn import save_ring_weights_as_model

    model = save_ring_weights_as_model(
        build_network("inception", 4).state_dict(),
        "inception-ds4",
        tmp_path / "untrained.safetensors",
        version="untrained",
    )
    folder = _site(tmp_path, site_a)
    StatusStore(folder).set("052", CaseStatus.REVIEWED, "dr_a")
    cases = scan_folder(folder).reviewed()
    score = run_to_end(score_model(model, cases, "untrained", CancelToken(), n_excluded=2))
    assert score.n_cases == 1 and score.n_excluded == 2 and score.n_lesion_cases == 1
    assert "not enough cases to judge: 1 reviewed case(s)" in describe(score)


def test_floors_and_the_model_in_use():
    good = _version(2, _score([0.7, 0.6, 0.65], fp=[0.5]))
    assert judge(good, None).ok and "Dice 0.650 on 3 case(s) with hematoma" in describe(good.score)
    low = _version(3, _score([0.1, 0.2, 0.15]))
    assert "below the floor" in judge(low, None).text()
    noisy = _version(4, _score([0.7, 0.7, 0.7], fp=[40.0, 20.0]))
    assert "false positives on normal cases is above" in judge(noisy, None).text()
    worse = _version(5, _score([0.5, 0.5, 0.5]))
    assert "lower than the model in use (v2: 0.650)" in judge(worse, good).text()
    assert judge(good, worse).ok
    few = _version(6, _score([0.9] * (MIN_CASES_TO_JUDGE - 1)))
    assert "not enough cases to judge" in judge(few, good).text()
    assert "not evaluated" in judge(_version(7, None), good).text()


def test_plausibility_bound():
    assert implausible(115.0) == ""  # the largest bleed in the data
    assert implausible(None) == "" and implausible(float("nan")) == ""
    text = implausible(1536.0)
    assert text.startswith("implausible: 1536 mL") and f"{PLAUSIBLE_MAX_ML:g} mL" in text
    assert math.isnan(not_enough_cases(0).mean_dice)
