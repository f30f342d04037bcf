"""Speed of the product network (the shipped default model, preset ``default``)
against this machine's fp32 matrix-multiply rate, measured in the same run.

    .venv/bin/python bench/bench_default_model.py [--threads 2] [--repeats 3] [--model W]

Prints: GEMM GFLOP/s (torch.mm 2048x2048); the network's GFLOP per working-grid
batch (counted by torch's FLOP counter, not by hand); the prediction engine's
ms per slice and its share of the GEMM rate; whole-volume prediction of a real
512x512 CT-ICH case (load -> brain -> working grid -> network -> back to the
scan's grid -> clean-up -> mask written), split into stages; and training
throughput (160-pixel patches, batch 8, forward + backward + Adam) as a share
of the GEMM rate. Each figure is the best of ``--repeats`` rounds, measured
round-robin so a burst of load from other processes favours no figure.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from core.cases.datasets import shared_data_root
from core.evaluation.inference import WORKING_BATCH, Segmenter, predict_files
from core.imaging.brain import brain_mask
from core.imaging.orientation import to_canonical
from core.io import load_ct
from core.model.default import load_default_model
from core.model.weights import load_weights
from core.progress import run_to_end
from core.training.loss import dice_bce


def flops(fn) -> float:
    with FlopCounterMode(display=False) as counter:
        fn()
    return float(counter.get_total_flops())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--model", type=Path, help="weights file (default: the shipped default model)")
    ap.add_argument("--case", type=Path, help="CT to time (default: site-a/test/ct_052, 512x512x35)")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    weights = load_weights(args.model) if args.model else load_default_model()
    seg = Segmenter(weights, threads=args.threads)
    case = args.case or shared_data_root() / "ctich" / "site-a" / "test" / "ct_052.nii.gz"

    # One working-grid batch as prediction runs it: the brain's box on the 0.8 mm grid.
    ct = load_ct(case)
    canon, _ = to_canonical(ct)
    brain = brain_mask(canon)
    conv = seg.convention
    work = conv.to_working(conv.prepare(canon.data, brain), canon.spacing)
    ii = np.flatnonzero(work.max(axis=(1, 2)) > conv.background_hu)
    jj = np.flatnonzero(work.max(axis=(0, 2)) > conv.background_hu)
    crop = work[ii[0] : ii[-1] + 1, jj[0] : jj[-1] + 1]
    ks = np.arange(min(WORKING_BATCH, crop.shape[2])) + crop.shape[2] // 2 - WORKING_BATCH // 2
    x = conv.stack(crop, ks)
    net = weights.network()
    with torch.inference_mode():
        batch_flops = flops(lambda: net(torch.from_numpy(x)))

    train_net = weights.network().train().to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(train_net.parameters(), 1e-3)
    px = torch.from_numpy(
        np.random.default_rng(0).normal(40, 20, (8, conv.channels, 160, 160)).astype(np.float32)
    ).contiguous(memory_format=torch.channels_last)
    py = (torch.rand(8, 1, 160, 160) > 0.95).float()

    def train_step():
        opt.zero_grad(set_to_none=True)
        dice_bce(py, train_net(px)).backward()
        opt.step()

    step_flops = flops(train_step)
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    out_dir = Path(tempfile.mkdtemp(prefix="hemarelay-bench-"))
    timings: dict[str, float] = {}
    stages: dict[str, float] = {}

    def record(key, fn):
        t = time.perf_counter()
        fn()
        timings[key] = min(timings.get(key, float("inf")), time.perf_counter() - t)

    seg.engine(x), train_step(), torch.mm(a, b)  # warm-up
    for _ in range(args.repeats):
        record("gemm", lambda: torch.mm(a, b))
        record("engine", lambda: seg.engine(x))
        record("train_step", train_step)
        t0 = time.perf_counter()
        run_to_end(predict_files([case], seg, out_dir))
        total = time.perf_counter() - t0
        if total < timings.get("volume", float("inf")):
            timings["volume"] = total
            t1 = time.perf_counter()
            v = load_ct(case)
            c, _ = to_canonical(v)
            t2 = time.perf_counter()
            br = brain_mask(c)
            t3 = time.perf_counter()
            run_to_end(seg.probabilities_canonical(conv.prepare(c.data, br), br, spacing=c.spacing))
            t4 = time.perf_counter()
            stages = {"load_s": t2 - t1, "brain_s": t3 - t2, "network_and_resampling_s": t4 - t3}

    gemm = 2 * 2048**3 / timings["gemm"] / 1e9
    engine_gflops = batch_flops / timings["engine"] / 1e9
    train_gflops = step_flops / timings["train_step"] / 1e9
    fig = {
        "threads": args.threads,
        "engine": seg.engine.name,
        "model": weights.meta.version,
        "gemm_gflops": gemm,
        "batch_shape": list(x.shape),
        "batch_gflop": batch_flops / 1e9,
        "engine_ms_per_slice": 1000 * timings["engine"] / x.shape[0],
        "engine_gflops": engine_gflops,
        "engine_percent_of_gemm": 100 * engine_gflops / gemm,
        "volume_case": case.name,
        "volume_shape": list(ct.shape),
        "volume_s": timings["volume"],
        **stages,
        "train_patches_per_s": 8 / timings["train_step"],
        "train_gflop_per_step": step_flops / 1e9,
        "train_percent_of_gemm": 100 * train_gflops / gemm,
    }
    print(f"threads                          {args.threads}")
    print(f"fp32 GEMM (torch.mm 2048^2)      {gemm:8.1f} GFLOP/s")
    print(
        f"model                            {weights.meta.version} ({weights.meta.architecture} "
        f"ds={weights.meta.ds}, {conv.in_plane_mm:g} mm grid, {conv.channels} slices in)"
    )
    print(f"network, batch {tuple(x.shape)}  {fig['batch_gflop']:8.2f} GFLOP")
    print(
        f"engine ({seg.engine.name})              {fig['engine_ms_per_slice']:8.1f} ms/slice = "
        f"{engine_gflops:.1f} GFLOP/s = {fig['engine_percent_of_gemm']:.0f}% of GEMM"
    )
    print(
        f"whole volume {case.name} {tuple(ct.shape)}: {timings['volume']:.2f} s "
        f"(load {stages['load_s']:.2f} s, brain {stages['brain_s']:.2f} s, network + resampling "
        f"{stages['network_and_resampling_s']:.2f} s)"
    )
    print(
        f"training 160x160 batch 8         {fig['train_patches_per_s']:8.1f} patches/s = "
        f"{train_gflops:.1f} GFLOP/s = {fig['train_percent_of_gemm']:.0f}% of GEMM"
    )
    if args.json:
        args.json.write_text(json.dumps(fig, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
