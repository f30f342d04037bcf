"""The shipped default model: chosen by cross-validation, trained on everything labelled.

``final`` ships only a model that passes the release check (normal scans stay nearly
empty; see ``release_check``): the first all-data run of 2026-12-05 (seed 0) failed it and
was discarded; the shipped weights are the same recipe's run with seed 1.

    # cross-validation by case (3 folds over both sites' train/ + test/ and the
    # normal scans; bench/folds.py): train on two folds, score the third
    .venv/bin/python bench/train_default_model.py cv --out runs/cv [--fold F] [--set k=v ...]
    # the reviewer benchmark on each fold's held-out cases, with that fold's model
    .venv/bin/python bench/train_default_model.py reviewer --out runs/cv [--fold F]
    # the final model on every labelled case and normal scan; --ship writes it and
    # its card (with the cross-validated scores read from runs/cv) to the resources
    .venv/bin/python bench/train_default_model.py final --out runs/final --cv-dir runs/cv --set seed=1 [--ship]

Every choice of the recipe is made on the cross-validated scores, never on
scans set aside: the owners measure the shipped model on scans this project
never sees. ``cv`` writes, per fold, ``fold-F/model.safetensors``,
``fold-F/scores.json`` (automatic Dice, volumes and false positives of the
held-out cases) and ``fold-F/held_out.txt`` (the held-out CTs, one per line,
which ``bench/bench_correction.py --cases`` reads). Prints the fp32 GEMM rate
of this machine as the reference.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.folds import case_label, labelled_cases, make_folds
from bench.machine import gemm_gflops
from core.cases.datasets import shared_data_root
from core.evaluation.inference import Segmenter
from core.evaluation.metrics import dice, pearson, volume_ml
from core.io import load_ct, load_mask
from core.progress import run_to_end
from core.training.config import load_config
from core.training.run import train_site

K_FOLDS = 3


def train(out: Path, config, cases, normals) -> float:
    """Train into ``out``; returns the minutes it took (resumes an interrupted run)."""
    t0 = time.monotonic()
    gen = train_site([], out, config, cases=(cases, normals))
    while True:
        try:
            ev = next(gen)
        except StopIteration as stop:
            result = stop.value
            break
        if getattr(ev, "phase", "") == "epoch_end":
            print(
                f"  epoch {ev.epoch}: train {ev.loss:.4f} val {ev.val_loss:.4f} "
                f"[{(time.monotonic() - t0) / 60:.1f} min]",
                flush=True,
            )
    minutes = (time.monotonic() - t0) / 60
    print(f"  trained in {minutes:.1f} min: {result.meta.version}", flush=True)
    return minutes


def score(seg: Segmenter, cases, normal: bool) -> list[dict]:
    rows = []
    for c in cases:
        ct = load_ct(c.ct_path)
        pred = run_to_end(seg.predict(ct))
        manual = np.zeros(ct.shape, np.uint8) if normal else load_mask(c.mask_path, ct).data
        rows.append(
            {
                "case": case_label(c),
                "dice": None if normal else dice(manual, pred.mask),
                "manual_ml": volume_ml(manual, ct.voxel_volume_ml),
                "auto_ml": pred.volume_ml,
                "seconds": pred.seconds,
            }
        )
        r = rows[-1]
        dice_text = "-" if normal else f"{r['dice']:.3f}"
        print(
            f"  {r['case']}: Dice {dice_text}, manual {r['manual_ml']:.1f} mL, auto {r['auto_ml']:.1f} mL", flush=True
        )
    return rows


def summary(rows: list[dict], normals: list[dict]) -> dict:
    d = [r["dice"] for r in rows]
    man, auto = [r["manual_ml"] for r in rows], [r["auto_ml"] for r in rows]
    fp = [r["auto_ml"] for r in normals]
    return {
        "n": len(d),
        "mean_dice": float(np.mean(d)) if d else None,
        "median_dice": float(np.median(d)) if d else None,
        "volume_r": float(pearson(man, auto).r) if len(d) > 2 else None,
        "found": int(sum(1 for r in rows if r["dice"] > 0.1)),
        "normal_fp_median_ml": float(np.median(fp)) if fp else None,
        "normal_fp_max_ml": float(np.max(fp)) if fp else None,
        "n_normals": len(fp),
    }


def fmt(s: dict) -> str:
    return (
        f"mean Dice {s['mean_dice']:.3f} (median {s['median_dice']:.3f}, n={s['n']}, found {s['found']}), "
        f"volume r {s['volume_r']:.3f}, normals FP median {s['normal_fp_median_ml']:.2f} / max "
        f"{s['normal_fp_max_ml']:.2f} mL (n={s['n_normals']})"
    )


def cmd_cv(args, config, root: Path) -> None:
    folds = make_folds(root, K_FOLDS, seed=0)
    todo = [f for f in folds if args.fold is None or f.index == args.fold]
    for fold in todo:
        out = args.out / f"fold-{fold.index}"
        out.mkdir(parents=True, exist_ok=True)
        (out / "held_out.txt").write_text("".join(f"{c.ct_path}\n" for c in fold.held_out))
        print(f"fold {fold.index}: training on {len(fold.train)} cases + {len(fold.train_normals)} normal scans")
        if not (out / "model.safetensors").exists():
            minutes = train(out, config, fold.train, fold.train_normals)
        else:
            minutes = None
            print("  model.safetensors exists: scoring it as it is")
        seg = Segmenter.from_file(out / "model.safetensors")
        print(f"fold {fold.index}: held-out cases")
        rows = score(seg, fold.held_out, normal=False)
        normals = score(seg, fold.held_out_normals, normal=True)
        result = {"config": config.to_dict(), "train_minutes": minutes, "cases": rows, "normals": normals}
        result["summary"] = summary(rows, normals)
        (out / "scores.json").write_text(json.dumps(result, indent=1))
        print(f"fold {fold.index}: {fmt(result['summary'])}", flush=True)
    print_cv(args.out)


def print_cv(cv_dir: Path) -> dict | None:
    """The folds' automatic scores, and all held-out cases pooled."""
    files = sorted(cv_dir.glob("fold-*/scores.json"))
    if not files:
        return None
    rows, normals = [], []
    for f in files:
        d = json.loads(f.read_text())
        rows += d["cases"]
        normals += d["normals"]
        print(f"{f.parent.name}: {fmt(d['summary'])}")
    pooled = summary(rows, normals)
    print(f"pooled ({len(files)} folds): {fmt(pooled)}")
    return pooled


def cmd_reviewer(args, root: Path) -> None:
    from bench.bench_correction import print_table, run_cases

    for fold_dir in sorted(args.out.glob("fold-*")):
        if args.fold is not None and fold_dir.name != f"fold-{args.fold}":
            continue
        cts = [Path(line) for line in (fold_dir / "held_out.txt").read_text().split()]
        print(f"{fold_dir.name}: reviewer benchmark on {len(cts)} held-out cases", flush=True)
        results = run_cases(cts, fold_dir / "model.safetensors", budget=args.budget, old_fill=args.old_fill)
        (fold_dir / "correction.json").write_text(json.dumps(results, indent=1))
        print_table(results)


def cmd_final(args, config, root: Path) -> None:
    cases, normals = labelled_cases(root)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    print(f"final: training on {len(cases)} cases + {len(normals)} normal scans")
    minutes = None
    if not (out / "model.safetensors").exists():
        minutes = train(out, config, cases, normals)
        (out / "minutes.json").write_text(json.dumps({"train_minutes": minutes}))
    elif (out / "minutes.json").exists():
        minutes = json.loads((out / "minutes.json").read_text())["train_minutes"]
    pooled = print_cv(args.cv_dir) if args.cv_dir else None
    release = release_check(out / "model.safetensors", normals)
    if args.ship:
        if pooled is None:
            raise SystemExit("--ship needs --cv-dir with the cross-validation of this recipe")
        if not release["passed"]:
            raise SystemExit(
                f"not shipped: {release['verdict']}. Train again with another seed "
                "(--set seed=N, a new --out): the recipe stays the one cross-validated."
            )
        ship(out / "model.safetensors", config, minutes, args.cv_dir, pooled, release)


# The release check of the final model: it must leave normal scans (nearly) empty. The
# first all-data run of 2026-12-05 (seed 0) painted whole vertex slices, 5.6-30 mL in every
# normal scan, where each cross-validation fold model stayed under 2.7 mL.
RELEASE_FP_MEDIAN_ML = 0.5  # the target for normal-scan false positives
RELEASE_FP_MAX_ML = 3.0  # the fold models' worst was 2.7 mL


def release_check(model: Path, normals) -> dict:
    """The final model's false positives on every normal scan, and whether it may ship."""
    print("release check: the final model on every normal scan")
    rows = score(Segmenter.from_file(model), normals, normal=True)
    fp = [r["auto_ml"] for r in rows]
    median, worst = float(np.median(fp)), float(np.max(fp))
    passed = median < RELEASE_FP_MEDIAN_ML and worst <= RELEASE_FP_MAX_ML
    verdict = (
        f"normal-scan false positives median {median:.2f} mL (limit < {RELEASE_FP_MEDIAN_ML}), "
        f"max {worst:.2f} mL (limit {RELEASE_FP_MAX_ML}) on {len(fp)} scans: " + ("passed" if passed else "FAILED")
    )
    print(f"release check: {verdict}", flush=True)
    return {
        "passed": passed,
        "verdict": verdict,
        "normal_fp_median_ml": median,
        "normal_fp_max_ml": worst,
        "n": len(fp),
    }


def cv_reviewer_summary(cv_dir: Path) -> dict | None:
    from bench.bench_correction import pooled_summary

    results = []
    for f in sorted(cv_dir.glob("fold-*/correction.json")):
        results += json.loads(f.read_text())
    return pooled_summary(results) if results else None


def next_version(previous: str | None, day: str) -> str:
    """One label per shipped file: ``default-DAY``, then ``default-DAY.2``, ``.3``...
    when a model was already shipped that day (sites' records name the version)."""
    base = "default-" + day
    if previous is None or not previous.startswith(base):
        return base
    suffix = previous[len(base) :]
    n = int(suffix[1:]) if suffix[:1] == "." and suffix[1:].isdigit() else 1
    return f"{base}.{n + 1}"


def ship(model: Path, config, minutes: float | None, cv_dir: Path, pooled: dict, release: dict) -> None:
    """The default model: the weights with a version and the data they came from
    in their metadata, and a card with the file's sha256 and the cross-validated
    scores (aggregates only: no case ids leave with the program)."""
    from dataclasses import replace

    from core.model.default import TRAINING_DATA, default_card_path, default_model_path, file_sha256
    from core.model.weights import load_weights, save_weights

    loaded = load_weights(model)
    previous = json.loads(default_card_path().read_text()).get("version") if default_card_path().exists() else None
    version = next_version(previous, time.strftime("%Y.%m.%d"))
    training = dict(loaded.meta.training, shipped_default=True, data_source=TRAINING_DATA)
    meta = replace(loaded.meta, training=training, version=version, sha256="")
    dest = default_model_path()
    dest.parent.mkdir(parents=True, exist_ok=True)
    meta = save_weights(dest, loaded.state_dict, meta)
    folds = {}
    for f in sorted(cv_dir.glob("fold-*/scores.json")):
        folds[f.parent.name] = json.loads(f.read_text())["summary"]
    card = {
        "file": dest.name,
        "file_sha256": file_sha256(dest),
        "tensors_sha256": meta.sha256,
        "version": version,
        "architecture": meta.architecture,
        "ds": meta.ds,
        "input": meta.input.to_dict(),
        "recipe": config.to_dict(),
        "training_data": TRAINING_DATA,
        "training_counts": loaded.meta.training.get("data", {}),
        "training_minutes": None if minutes is None else round(minutes, 1),
        "prediction": "on the 0.8 mm working grid, each slice with its neighbours (and no click), averaged with "
        "its left-right mirror; inside the brain mask, probability > 0.5, 3-D components of 27 voxels or more",
        "clicks": "the same weights take a reviewer's positive and negative clicks (Tools > Click bleed)",
        "scores": {
            "cross_validation": {
                "folds": K_FOLDS,
                "split": "by case, over both sites' train/ and test/ and their normal/ scans (bench/folds.py)",
                "per_fold": folds,
                "pooled": pooled,
                "reviewer": cv_reviewer_summary(cv_dir),
            }
        },
        "release_check": {k: v for k, v in release.items() if k != "passed"},
        "intended_use": "A starting point that clinicians correct, and the start of a ring "
        "(ring init --start-from default); not a diagnostic device.",
    }
    default_card_path().write_text(json.dumps(card, indent=1) + "\n")
    print(f"shipped {dest} (sha256 {card['file_sha256'][:12]}) and {default_card_path()}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("mode", choices=("cv", "reviewer", "final"))
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--preset", default="default")
    ap.add_argument("--set", action="append", default=[])
    ap.add_argument("--fold", type=int, default=None, help="cv/reviewer: only this fold (0-based)")
    ap.add_argument("--budget", type=int, default=30, help="reviewer: clicks per case at most")
    ap.add_argument("--old-fill", action="store_true", help="reviewer: also today's tools with the old fill")
    ap.add_argument("--cv-dir", type=Path, default=None, help="final: the cross-validation run of this recipe")
    ap.add_argument("--ship", action="store_true", help="final: write the model and its card to the resources")
    args = ap.parse_args()
    root = shared_data_root() / "ctich"
    config = load_config(args.preset, None, args.set)
    print(f"fp32 GEMM (torch.mm 2048^2): {gemm_gflops():.1f} GFLOP/s", flush=True)
    if args.mode == "cv":
        cmd_cv(args, config, root)
    elif args.mode == "reviewer":
        cmd_reviewer(args, root)
    else:
        cmd_final(args, config, root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
