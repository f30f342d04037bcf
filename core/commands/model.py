"""``hemarelay train``, ``predict`` and ``evaluate``: the segmentation model."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import InputError
from ..model.fast import BACKENDS
from ..progress import drive
from . import add_command
from .console import ConsolePrinter
from .options import training_settings


def register(subparsers) -> None:
    t = add_command(
        subparsers,
        "train",
        parents=[training_settings()],
        description="Train on SITE_DIR/train (ct_NNN.nii.gz + mask_NNN.nii.gz pairs) until the "
        "validation loss stops improving. Writes OUT/model.safetensors; OUT/checkpoint.safetensors "
        "lets an interrupted run continue when started again with the same OUT.",
    )
    t.add_argument(
        "--data",
        type=Path,
        required=True,
        action="append",
        metavar="SITE_DIR",
        help="site folder with train/ (repeat to pool several sites)",
    )
    t.add_argument("--out", type=Path, required=True, metavar="DIR")
    t.add_argument("--init", type=Path, metavar="W", help="start from these weights instead of random ones")
    t.add_argument("--fresh", action="store_true", help="ignore a checkpoint left in --out")
    t.set_defaults(func=run_train)

    p = add_command(
        subparsers,
        "predict",
        description="Write a hematoma mask pred_NNN.nii.gz for each CT (beside it, or in -o DIR), "
        "on the CT's own grid.",
    )
    p.add_argument("cts", nargs="+", type=Path, metavar="CT", help=".nii/.nii.gz files or DICOM folders")
    p.add_argument(
        "--model",
        type=Path,
        metavar="W",
        help="weights file (.safetensors); default: the model shipped with the program",
    )
    p.add_argument("-o", "--out", type=Path, metavar="DIR", help="folder for the masks (default: beside each CT)")
    p.add_argument("--probabilities", action="store_true", help="also write prob_NNN.nii.gz (float32)")
    p.add_argument("--backend", choices=BACKENDS, default="auto", help="inference engine (default: fastest)")
    p.set_defaults(func=run_predict)

    e = add_command(
        subparsers,
        "evaluate",
        description="Predict SITE_DIR/test (and SITE_DIR/normal when present), compare with the "
        "manual masks, print a table and write the scores as JSON.",
    )
    e.add_argument(
        "--model",
        type=Path,
        metavar="W",
        help="weights file (.safetensors); default: the model shipped with the program",
    )
    e.add_argument("--data", type=Path, required=True, metavar="SITE_DIR")
    e.add_argument("--json", type=Path, required=True, metavar="OUT.json")
    e.add_argument("--backend", choices=BACKENDS, default="auto")
    e.set_defaults(func=run_evaluate)


def run_train(args: argparse.Namespace) -> int:
    from ..training.config import load_config
    from ..training.run import train_site

    config = load_config(args.preset, args.config, args.overrides)
    console = ConsolePrinter()
    result = drive(train_site(args.data, args.out, config, fresh=args.fresh, init_weights=args.init), console)
    console.close()
    m = result.meta
    print(
        f"{result.weights_path}: {m.architecture} ds={m.ds}, {result.stopped} after "
        f"{m.training['epochs']} epochs, best validation loss {m.metrics['val_loss']:.4f} "
        f"(epoch {m.training['best_epoch']}), sha256 {m.sha256[:12]}"
    )
    return 0


def run_predict(args: argparse.Namespace) -> int:
    from ..evaluation.inference import CASE_STAGES, predict_files

    for ct in args.cts:
        if not ct.exists():
            raise InputError(f"{ct}: file or folder not found.")
    segmenter = _segmenter(args)
    console = ConsolePrinter(quiet_stages=CASE_STAGES)
    done = drive(predict_files(args.cts, segmenter, args.out, args.probabilities), console)
    console.close()
    for f in done:
        p = f.prediction
        print(f"{f.mask_path}: {p.volume_ml:.1f} mL hematoma ({p.seconds:.1f} s)")
    return 0


def _segmenter(args: argparse.Namespace):
    """The model named by --model, or the default model shipped with the program."""
    from ..evaluation.inference import Segmenter

    if args.model is not None:
        return Segmenter.from_file(args.model, backend=args.backend)
    from ..model.default import load_default_model

    weights = load_default_model()
    print(
        f"Using the default model {weights.meta.version} (shipped with the program; --model W to use another).",
        file=sys.stderr,
    )
    return Segmenter(weights, backend=args.backend)


def format_table(ev) -> str:
    rows = [("case", "Dice", "manual mL", "auto mL")]
    rows += [(c.case, f"{c.dice:.3f}", f"{c.manual_ml:.1f}", f"{c.auto_ml:.1f}") for c in ev.cases]
    rows += [(f"{c.case} (normal)", "", "0.0", f"{c.auto_ml:.1f}") for c in ev.normal]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(r, widths))) for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    md = "n/a" if ev.mean_dice is None else f"{ev.mean_dice:.3f}"
    pr = "n/a" if ev.pearson_r is None else f"{ev.pearson_r:.3f}"
    lines.append(f"mean Dice {md}, Pearson r of volumes {pr} ({len(ev.cases)} test cases)")
    return "\n".join(lines)


def run_evaluate(args: argparse.Namespace) -> int:
    from ..evaluation.inference import CASE_STAGES, evaluate_site
    from ..io.atomic import atomic_write_text

    segmenter = _segmenter(args)
    console = ConsolePrinter(quiet_stages=CASE_STAGES)
    ev = drive(evaluate_site(args.data, segmenter), console)
    console.close()
    atomic_write_text(args.json, json.dumps(ev.to_json_dict(), indent=2) + "\n")
    print(format_table(ev))
    print(f"scores written to {args.json}")
    return 0
