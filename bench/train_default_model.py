"""Train the product recipe on both sites' train/ folders and score it.

    .venv/bin/python bench/train_default_model.py --out /tmp/run [--set k=v ...]
    .venv/bin/python bench/train_default_model.py --out /tmp/run --final   # + test sets

Without ``--final`` it scores only what a recipe may be chosen on: the
validation cases (the held-out *cases* of the split by case, predicted as whole
volumes through the product's prediction path) and the normal scans the recipe
does not train on. ``--final`` adds both sites' test/ folders and every normal
scan: run it once, on the chosen recipe, to fill the table of the note.
The output folder holds model.safetensors (``hemarelay train``'s output) and
scores.json. Prints the fp32 GEMM rate of this machine as the reference.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.cases.datasets import shared_data_root, site_split
from core.evaluation.inference import Segmenter
from core.io import load_ct, load_mask
from core.evaluation.metrics import dice, pearson, volume_ml
from core.model.weights import load_weights
from core.training.config import load_config
from core.training.patches import validation_groups
from core.training.run import train_site, training_cases
from core.training.site_data import split_rng


def gemm_gflops() -> float:
    import torch

    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    torch.mm(a, b)
    t = time.perf_counter()
    for _ in range(5):
        torch.mm(a, b)
    return 5 * 2 * 2048**3 / (time.perf_counter() - t) / 1e9


def score(seg: Segmenter, cases, with_masks: bool) -> list[dict]:
    rows = []
    for c in cases:
        ct = load_ct(c.ct_path)
        gen = seg.predict(ct)
        while True:
            try:
                next(gen)
            except StopIteration as stop:
                pred = stop.value
                break
        manual = load_mask(c.mask_path, ct).data if (with_masks and c.mask_path) else np.zeros(ct.shape, np.uint8)
        rows.append(
            {
                "case": f"{c.ct_path.parent.parent.name}/{c.ct_path.parent.name}/{c.case_id}",
                "dice": dice(manual, pred.mask) if with_masks else None,
                "manual_ml": volume_ml(manual, ct.voxel_volume_ml),
                "auto_ml": pred.volume_ml,
                "seconds": pred.seconds,
            }
        )
        print(
            f"  {rows[-1]['case']}: Dice {rows[-1]['dice'] if with_masks else '-'}, "
            f"manual {rows[-1]['manual_ml']:.1f} mL, auto {pred.volume_ml:.1f} mL",
            flush=True,
        )
    return rows


def summary(rows: list[dict]) -> str:
    d = [r["dice"] for r in rows]
    r = pearson([x["manual_ml"] for x in rows], [x["auto_ml"] for x in rows]).r if len(rows) > 2 else float("nan")
    return f"mean Dice {np.mean(d):.3f} (sd {np.std(d):.3f}, n={len(d)}), volume r {r:.3f}"


def fp_summary(rows: list[dict]) -> str:
    v = [r["auto_ml"] for r in rows]
    return f"false positives median {np.median(v):.2f} mL, max {np.max(v):.2f} mL (n={len(v)})" if v else "none"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--preset", default="default")
    ap.add_argument("--set", action="append", default=[])
    ap.add_argument("--final", action="store_true", help="also score test/ and every normal/ scan")
    ap.add_argument("--skip-training", action="store_true", help="score OUT/model.safetensors as it is")
    ap.add_argument(
        "--ship",
        action="store_true",
        help="with --final: write the model and its card to core/resources/models/ (the default model)",
    )
    args = ap.parse_args()
    root = shared_data_root() / "ctich"
    sites = [root / "site-a", root / "site-b"]
    config = load_config(args.preset, None, args.set)
    print(f"fp32 GEMM (torch.mm 2048^2): {gemm_gflops():.1f} GFLOP/s", flush=True)
    t0 = time.monotonic()
    if not args.skip_training:
        gen = train_site(sites, args.out, config)
        while True:
            try:
                ev = next(gen)
            except StopIteration as stop:
                result = stop.value
                break
            if getattr(ev, "phase", "") == "epoch_end":
                print(
                    f"epoch {ev.epoch}: train {ev.loss:.4f} val {ev.val_loss:.4f} "
                    f"best {ev.best_val_loss:.4f} [{(time.monotonic() - t0) / 60:.1f} min]",
                    flush=True,
                )
        print(f"trained in {(time.monotonic() - t0) / 60:.1f} min: {result.meta.version}", flush=True)
    minutes = (time.monotonic() - t0) / 60
    if args.skip_training:  # the epochs' own times, from the weights file (patch preparation not included)
        history = load_weights(args.out / "model.safetensors").meta.training.get("history", [])
        minutes = sum(h["seconds"] for h in history) / 60
    cases, normals = training_cases(sites, config)
    groups = np.arange(len(cases) + len(normals))
    val_idx = set(int(g) for g in validation_groups(groups, config.val_fraction, split_rng(config)))
    val_cases = [c for i, c in enumerate(cases) if i in val_idx]
    all_normals = [c for s in sites for c in site_split(s, "normal")]
    seen = {c.ct_path for c in normals}
    unseen_normals = [c for c in all_normals if c.ct_path not in seen]
    seg = Segmenter.from_file(args.out / "model.safetensors")
    out = {"config": config.to_dict(), "train_minutes": minutes}
    print("validation cases:", flush=True)
    out["validation"] = score(seg, val_cases, True)
    print("normal scans not trained on:", flush=True)
    out["unseen_normals"] = score(seg, unseen_normals, False)
    lines = [f"validation: {summary(out['validation'])}", f"unseen normals: {fp_summary(out['unseen_normals'])}"]
    if args.final:
        for s in sites:
            print(f"{s.name} test:", flush=True)
            out[f"test_{s.name}"] = score(seg, site_split(s, "test", require_masks=True), True)
        out["all_normals"] = [r for r in out["unseen_normals"]] + score(
            seg, [c for c in all_normals if c.ct_path in seen], False
        )
        test_rows = out["test_site-a"] + out["test_site-b"]
        lines += [
            f"test site-a: {summary(out['test_site-a'])}",
            f"test site-b: {summary(out['test_site-b'])}",
            f"test both: {summary(test_rows)}",
            f"all normals: {fp_summary(out['all_normals'])}",
        ]
    lines.append(f"training minutes {minutes:.1f}")
    (args.out / "scores.json").write_text(json.dumps(out, indent=1, default=float))
    print("\n".join(lines))
    if args.ship:
        if not args.final:
            ap.error("--ship needs --final (the card records the test scores)")
        ship(args.out / "model.safetensors", out, lines)
    return 0


def ship(model: Path, out: dict, lines: list[str]) -> None:
    """The default model: the weights with a version and the data they came from
    in their metadata, and a card with the file's sha256 and aggregate scores
    (counts and means only: no case ids leave with the program)."""
    from dataclasses import replace

    from core.model.default import TRAINING_DATA, default_card_path, default_model_path, file_sha256
    from core.model.weights import load_weights, save_weights

    loaded = load_weights(model)
    version = "default-" + time.strftime("%Y.%m.%d")  # one label per shipped file
    training = dict(loaded.meta.training, shipped_default=True, data_source=TRAINING_DATA)
    meta = replace(loaded.meta, training=training, version=version, sha256="")
    dest = default_model_path()
    dest.parent.mkdir(parents=True, exist_ok=True)
    meta = save_weights(dest, loaded.state_dict, meta)

    def agg(rows, key):
        v = [r[key] for r in rows]
        return {"n": len(v), "mean": float(np.mean(v)), "median": float(np.median(v)), "max": float(np.max(v))}

    test_rows = out["test_site-a"] + out["test_site-b"]
    card = {
        "file": dest.name,
        "file_sha256": file_sha256(dest),
        "tensors_sha256": meta.sha256,
        "version": version,
        "architecture": meta.architecture,
        "ds": meta.ds,
        "input": meta.input.to_dict(),
        "recipe": out["config"],
        "training_data": TRAINING_DATA,
        "training_counts": loaded.meta.training.get("data", {}),
        "training_minutes": round(out["train_minutes"], 1),
        "prediction": "on the 0.8 mm working grid, each slice with its neighbours, averaged with its "
        "left-right mirror; inside the brain mask, probability > 0.5, 3-D components of 27 voxels or more",
        "scores": {
            "test_dice": agg(test_rows, "dice"),
            "test_volume_pearson_r": float(
                pearson([r["manual_ml"] for r in test_rows], [r["auto_ml"] for r in test_rows]).r
            ),
            "normal_false_positive_ml": agg(out["all_normals"], "auto_ml"),
            "validation_dice": agg(out["validation"], "dice"),
        },
        "summary": lines,
        "intended_use": "A starting point that clinicians correct, and the start of a ring "
        "(ring init --start-from default); not a diagnostic device.",
    }
    default_card_path().write_text(json.dumps(card, indent=1) + "\n")
    print(f"shipped {dest} (sha256 {card['file_sha256'][:12]}) and {default_card_path()}")


if __name__ == "__main__":
    sys.exit(main())
