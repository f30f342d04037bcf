"""Train a preset on one site's train/ cases and evaluate it on that site's test/
(and normal/) cases: the figures the model issue asks for.

    .venv/bin/python bench/bench_training.py [--site site-a] [--preset cpu-small]
        [--set key=value ...] [--out DIR]

Prints the epochs, seconds per epoch, training throughput (patches/s), the
best validation loss, then per-case Dice and volumes, mean Dice and the
Pearson r of volumes on the test cases. Several minutes on 2 cores with the
cpu-small preset; meant for a GPU machine with the paper preset.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.cases.datasets import shared_data_root
from core.commands.model import format_table
from core.evaluation.inference import Segmenter, evaluate_site
from core.progress import run_to_end
from core.training.config import load_config
from core.training.run import train_site
from core.training.trainer import TrainingProgress


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--site", default="site-a", help="folder under <data>/ctich (default site-a)")
    ap.add_argument("--preset", default="cpu-small")
    ap.add_argument("--config", type=Path)
    ap.add_argument("--set", action="append", default=[], dest="overrides", metavar="KEY=VALUE")
    ap.add_argument("--out", type=Path, help="output folder (default: a new temporary folder)")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    site = shared_data_root() / "ctich" / args.site
    out = args.out or Path(tempfile.mkdtemp(prefix="hemarelay-train-"))
    config = load_config(args.preset, args.config, args.overrides)
    print(f"training {config.preset} on {site}/train -> {out}", flush=True)

    t0 = time.perf_counter()
    gen = train_site(site, out, config)
    while True:
        try:
            ev = next(gen)
        except StopIteration as stop:
            result = stop.value
            break
        if isinstance(ev, TrainingProgress) and ev.phase == "epoch_end":
            print(
                f"  epoch {ev.epoch:3d}  train {ev.loss:.4f}  val {ev.val_loss:.4f}  best {ev.best_val_loss:.4f}",
                flush=True,
            )
    train_s = time.perf_counter() - t0
    meta = result.meta
    history = meta.training["history"]
    data = meta.training["data"]
    epoch_s = [h["seconds"] for h in history]
    print(
        f"{result.stopped} after {len(history)} epochs in {train_s:.0f} s "
        f"(patch preparation included); {sum(epoch_s) / len(epoch_s):.1f} s per epoch, "
        f"{data['n_train_patches'] * len(history) / sum(epoch_s):.1f} training patches/s "
        f"(validation pass included; {data['n_train_patches']} train + "
        f"{data['n_val_patches']} validation patches)"
    )
    print(f"best validation loss {meta.metrics['val_loss']:.4f} at epoch {meta.training['best_epoch']}")

    t1 = time.perf_counter()
    ev = run_to_end(evaluate_site(site, Segmenter.from_file(result.weights_path)))
    print(format_table(ev))
    print(f"evaluation {time.perf_counter() - t1:.0f} s; weights {result.weights_path}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "preset": config.preset,
                    "config": config.to_dict(),
                    "epochs": len(history),
                    "stopped": result.stopped,
                    "train_seconds": train_s,
                    "seconds_per_epoch": sum(epoch_s) / len(epoch_s),
                    "best_val_loss": meta.metrics["val_loss"],
                    "evaluation": ev.to_json_dict(),
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
