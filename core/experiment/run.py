"""The experiment as one resumable progress generator.

Steps, in order, each recorded in ``out/steps/<step>.json`` when finished:
``train-SSL-<SITE>`` for each site (``train_site``, which itself resumes from
its checkpoint), ``train-MSL`` (the ring, one process per site), ``evaluate``
(every model on every site's test and normal scans) and ``report`` (Table 2,
statistics, figures, HTML). ``resume`` skips finished steps; a step that runs
again makes the later steps stale, so their records are dropped.
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Generator

import numpy as np

from .. import __version__
from ..evaluation.inference import Evaluation
from ..evaluation.scoring import CaseScore
from ..io.atomic import atomic_path, atomic_write_text
from ..model.weights import read_meta
from ..progress import NEVER_CANCELLED, CancelToken, Progress
from ..training.run import train_site
from . import figures, report, tables
from .msl import run_ring
from .plan import ExperimentPlan, StepLog, check_plan_file
from .scoring import ExampleSlice, evaluate_all

STAGE = "Experiment"


@dataclass(frozen=True)
class ExperimentResult:
    out: Path
    table2: list[dict]
    ran: list[str]  # steps run by this call
    skipped: list[str]  # steps already done (resume)
    seconds: float


def _steps(plan: ExperimentPlan) -> list[str]:
    return [f"train-{s.ssl_model}" for s in plan.sites] + ["train-MSL", "evaluate", "report"]


def run_experiment(
    plan: ExperimentPlan, token: CancelToken = NEVER_CANCELLED, resume: bool = False
) -> Generator[Progress, None, ExperimentResult]:
    t_start = time.monotonic()
    check_plan_file(plan, resume)
    log = StepLog(plan.out)
    steps = _steps(plan)
    ran: list[str] = []
    skipped: list[str] = []
    for n, step in enumerate(steps):
        if resume and not ran and log.done(step) is not None:
            skipped.append(step)
            yield Progress(STAGE, n + 1, len(steps), f"step {n + 1} of {len(steps)}, {step}: already done")
            continue
        for later in steps[n:]:  # whatever follows a step that runs again is stale
            log.path(later).unlink(missing_ok=True)
        yield Progress(STAGE, n, len(steps), f"step {n + 1} of {len(steps)}: {step}")
        t0 = time.monotonic()
        if step == "train-MSL":
            record = yield from run_ring(plan, token, resume)
        elif step.startswith("train-"):
            site = next(s for s in plan.sites if step == f"train-{s.ssl_model}")
            res = yield from train_site(site.data, plan.model_dir(site.ssl_model), plan.config, token)
            t = res.meta.training
            record = {
                "stopped": res.stopped,
                "epochs": t["epochs"],
                "best_epoch": t["best_epoch"],
                "best_val_loss": res.meta.metrics["val_loss"],
                "resumed_from_epoch": res.resumed_from_epoch,
                "history": t["history"],
            }
        elif step == "evaluate":
            scores, examples = yield from evaluate_all(plan, token)
            _save_examples(plan.out / "eval" / "examples.npz", examples)
            record = {
                "evaluations": {m: {s: ev.to_json_dict() for s, ev in by_site.items()} for m, by_site in scores.items()}
            }
        else:
            yield Progress(STAGE, n, len(steps), "writing Table 2, statistics, figures and report")
            record = {"files": _write_outputs(plan, log)}
        record["seconds"] = round(time.monotonic() - t0, 2)
        log.mark(step, record)
        ran.append(step)
    table = json.loads((plan.out / "stats.json").read_text())["table2"]
    yield Progress(STAGE, len(steps), len(steps), f"finished; results in {plan.out}")
    return ExperimentResult(plan.out, table, ran, skipped, time.monotonic() - t_start)


# ------------------------------------------------------------------ outputs
def _save_examples(path: Path, examples: list[ExampleSlice]) -> None:
    arrays = {}
    for i, ex in enumerate(examples):
        arrays[f"{i}/ct"], arrays[f"{i}/manual"] = ex.ct, ex.manual
        arrays[f"{i}/spacing"] = np.array(ex.spacing)
        arrays[f"{i}/site"] = np.array(ex.site)
        for m, mask in ex.predicted.items():
            arrays[f"{i}/pred/{m}"] = mask
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)


def _load_examples(path: Path) -> list[ExampleSlice]:
    z = np.load(path)
    out = []
    for i in sorted({int(k.split("/")[0]) for k in z.files}):
        preds = {k.split("/", 2)[2]: z[k] for k in z.files if k.startswith(f"{i}/pred/")}
        out.append(
            ExampleSlice(
                str(z[f"{i}/site"]), z[f"{i}/ct"], z[f"{i}/manual"], preds, tuple(float(v) for v in z[f"{i}/spacing"])
            )
        )
    return out


def _evaluation(d: dict) -> Evaluation:
    cases = [CaseScore(c["case"], c["dice"], c["manual_ml"], c["auto_ml"]) for c in d["cases"]]
    normal = [CaseScore(c["case"], float("nan"), 0.0, c["auto_ml"]) for c in d["normal"]]
    return Evaluation(cases, normal, d["mean_dice"], d["pearson_r"], d["model_sha256"])


def _versions() -> dict:
    import matplotlib
    import scipy
    import torch

    return {
        "hemarelay": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "matplotlib": matplotlib.__version__,
        "platform": platform.platform(),
    }


def _write_outputs(plan: ExperimentPlan, log: StepLog) -> list[str]:
    out = plan.out
    sites = [s.name for s in plan.sites]
    ssl = [s.ssl_model for s in plan.sites]
    evals = log.done("evaluate")["evaluations"]
    scores = {m: {s: _evaluation(evals[m][s]) for s in sites} for m in plan.models}
    summaries = {m: {s: tables.model_summary(scores[m][s]) for s in sites} for m in plan.models}
    tests = tables.wilcoxon_tests(scores, sites, ssl)
    rows = tables.table2_rows(summaries, plan.models, sites)
    train = {m: log.done(f"train-{m}") for m in plan.models}
    model_files = {}
    for m in plan.models:
        meta = read_meta(plan.model_path(m))
        model_files[m] = {
            "file": f"models/{m}/model.safetensors",
            "sha256": meta.sha256,
            "version": meta.version,
            "preset": meta.preset,
            "metrics": meta.metrics,
            "source": meta.training.get("source", "single-site training"),
        }
    timings = {f"train {m}": train[m]["seconds"] for m in plan.models}
    timings["evaluate"] = log.done("evaluate")["seconds"]
    timings["total (steps so far)"] = sum(timings.values())
    stats = {
        "plan": plan.describe(),
        "table2": rows,
        "models": summaries,
        "wilcoxon": tests,
        "training": {m: {k: v for k, v in train[m].items() if k != "seconds"} for m in plan.models},
        "ring": train["MSL"],
        "model_files": model_files,
        "timings_s": timings,
        "versions": _versions(),
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    n_test = {s: summaries[plan.models[0]][s]["n_test"] for s in sites}
    atomic_write_text(out / "table2.csv", tables.table2_csv(rows))
    atomic_write_text(out / "table2.md", tables.table2_markdown(rows, sites, n_test))
    atomic_write_text(out / "stats.json", json.dumps(stats, indent=1, allow_nan=False) + "\n")
    figs = {}
    for s in sites:
        dice = {m: [c["dice"] for c in summaries[m][s]["cases"]] for m in plan.models}
        figs[f"Per-volume Dice on site {s}'s test data"] = figures.dice_boxplot(
            out / f"fig_dice_site_{s}.png", s, dice, tests[s]
        )
    examples = _load_examples(out / "eval" / "examples.npz")
    figs["Examples (largest test hematoma of each site)"] = figures.examples_figure(
        out / "fig_examples.png", examples, plan.models
    )
    atomic_write_text(out / "report.html", report.render(out, stats, figs))
    return ["table2.csv", "table2.md", "stats.json", *(p.name for p in figs.values()), "report.html"]
