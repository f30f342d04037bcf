"""Click bleed's preview latency: what a reviewer waits for after each click.

For each case, the click tool is prepared as the application prepares it (brain,
the network's first look, on a worker), then a session of clicks is replayed:
positive clicks at the most interior voxel of the largest missed part of the bleed,
negative clicks at the largest wrongly added part (the reviewer benchmark's rule,
:mod:`bench.bench_correction`), each timed as the application times its preview
(:meth:`core.annotation.click_segment.ClickContext.segment`: the slices the clicks
reach through the network, then the mask). Prints the median and p95 with this
machine's fp32 matrix-multiply rate, measured in the same run, and torch's thread
count (the application uses the machine's cores).

    .venv/bin/python bench/bench_click_latency.py [--data SITE] [--cases 3] [--clicks 8] [--model W]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_correction import Reviewer, load_case
from bench.machine import gemm_gflops
from core.annotation.click_segment import Click
from core.cases.case_files import case_id, existing_mask
from core.cases.datasets import shared_data_root
from core.evaluation.inference import Segmenter
from core.model.default import load_default_model
from core.model.weights import load_weights


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--data", type=Path, default=None, help="a site folder (its test/ cases); default: both shared sites"
    )
    ap.add_argument("--cases", type=int, default=3)
    ap.add_argument("--clicks", type=int, default=8)
    ap.add_argument("--model", type=Path, default=None, help="weights file (default: the shipped default model)")
    args = ap.parse_args()
    import torch

    print(f"fp32 GEMM (torch.mm 2048^2): {gemm_gflops():.1f} GFLOP/s; torch threads {torch.get_num_threads()}")
    root = shared_data_root() / "ctich"
    folders = [args.data / "test"] if args.data else [root / "site-a" / "test", root / "site-b" / "test"]
    cts = [p for f in folders for p in sorted(f.glob("ct_*.nii.gz")) if existing_mask(f, case_id(p)) is not None]
    segmenter = Segmenter(load_weights(args.model) if args.model else load_default_model())
    times: list[float] = []
    for ct in cts[: args.cases]:
        case = load_case(ct, existing_mask(ct.parent, case_id(ct)), segmenter)
        start = np.zeros(case.truth.shape, np.uint8)
        reviewer = Reviewer(case, use_clicks=True)  # its rule for where the next click goes
        clicks: list[Click] = []
        mask = start
        for _ in range(args.clicks):
            error = reviewer.largest_error(mask.astype(bool))
            if error is None:
                break
            positive, _region, seed = error
            clicks.append(Click(*seed, positive=positive))
            result = case.context.segment(start, clicks)
            times.append(result.seconds)
            mask = result.mask
        print(
            f"{case.label}: {len(clicks)} clicks, "
            + ", ".join(f"{1000 * t:.0f}" for t in times[-len(clicks) :])
            + " ms"
        )
    if times:
        ms = 1000 * np.asarray(times)
        print(f"click preview: median {np.median(ms):.0f} ms, p95 {np.percentile(ms, 95):.0f} ms (n={len(ms)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
