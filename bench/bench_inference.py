"""Inference and training speed of the Inception network against the machine's
fp32 matrix-multiply rate, measured in the same run.

    .venv/bin/python bench/bench_inference.py [--threads 2] [--repeats 3] [--model W]

Prints: GEMM GFLOP/s (torch.mm 2048x2048), network GFLOP per 512x512 slice
(counted from the layers), plain eager ms/slice, fast-engine ms/slice, the
fast engine's share of the GEMM rate, whole-volume seconds on a real CT-ICH
case (load -> brain -> network -> clean-up -> mask written), and training
throughput (64x64 patches, batch 8) against the same rate. Each figure is the
best of ``--repeats`` rounds, measured round-robin so a burst of load from
other processes does not favour one figure.
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

from core.cases.datasets import shared_data_root
from core.evaluation.inference import Segmenter, predict_files
from core.imaging.brain import brain_mask
from core.imaging.orientation import to_canonical
from core.io import load_ct
from core.model.architectures import build_network, inception_flops_per_pixel
from core.model.fast import make_engine
from core.model.weights import LoadedWeights, WeightsMeta, load_weights, tensors_sha256
from core.progress import run_to_end
from core.training.loss import get_loss


def best_of(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--model", type=Path, help="weights file (default: seeded random weights)")
    ap.add_argument("--case", type=Path, help="CT to time (default: the 512x512 site-a test case closest to 36 slices)")
    ap.add_argument("--skip-eager", action="store_true", help="skip the slow plain eager pass")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    if args.model:
        weights = load_weights(args.model)
    else:
        torch.manual_seed(0)
        sd = build_network("inception", 4).state_dict()
        weights = LoadedWeights(WeightsMeta("inception", 4, sha256=tensors_sha256(sd)), sd)
    net = weights.network()  # the plain eager reference: NCHW, as torch builds it
    ds = weights.meta.ds
    flop_slice = inception_flops_per_pixel(ds) * 512 * 512
    fast = make_engine(weights.network(), "auto", args.threads)
    torch_fast = make_engine(weights.network(), "torch", args.threads)
    rng = np.random.default_rng(0)
    x = rng.normal(30, 15, (1, 1, 512, 512)).clip(-20, 100).astype(np.float32)
    xt = torch.from_numpy(x)
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)

    case = args.case
    if case is None:  # the 512x512 CT-ICH test case whose slice count is closest to 36
        site = shared_data_root() / "ctich" / "site-a" / "test"
        shapes = {p: load_ct(p).shape for p in sorted(site.glob("ct_*.nii.gz"))}
        fits = [p for p, s in shapes.items() if s[:2] == (512, 512)]
        case = min(fits, key=lambda p: abs(shapes[p][2] - 36)) if fits else None
    seg = Segmenter(weights, threads=args.threads)

    # training step: 64x64 patches, batch 8, Adam, channels-last as the trainer runs it
    tnet = build_network("inception", ds).to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(tnet.parameters(), lr=1e-4)
    loss_fn = get_loss("soft_dice")
    px = torch.from_numpy(rng.normal(30, 15, (8, 1, 64, 64)).astype(np.float32)).contiguous(
        memory_format=torch.channels_last
    )
    py = torch.from_numpy((rng.random((8, 1, 64, 64)) > 0.8).astype(np.float32))

    def train_step():
        opt.zero_grad(set_to_none=True)
        loss_fn(py, tnet(px)).backward()
        opt.step()

    def eager():
        with torch.no_grad():
            net(xt)

    timings: dict[str, float] = {}

    def record(key, fn):
        timings[key] = min(timings.get(key, float("inf")), best_of(fn, 1))

    out_dir = Path(tempfile.mkdtemp(prefix="hemarelay-bench-"))
    stages: dict[str, float] = {}
    # warm-up (oneDNN primitive creation, ONNX Runtime graph planning) and equality
    with torch.no_grad():
        reference = net(xt).numpy()
    max_diff = float(np.abs(fast(x) - reference).max())
    max_diff_torch = float(np.abs(torch_fast(x) - reference).max())
    train_step(), torch.mm(a, b)
    for _ in range(args.repeats):
        record("gemm", lambda: torch.mm(a, b))
        if not args.skip_eager:
            record("eager", eager)
        record("fast", lambda: fast(x))
        record("torch_fast", lambda: torch_fast(x))
        record("train_step", train_step)
        if case is not None:
            t0 = time.perf_counter()
            run_to_end(predict_files([case], seg, out_dir))
            total = time.perf_counter() - t0
            if total < timings.get("volume", float("inf")):
                timings["volume"] = total
                ct = load_ct(case)
                t1 = time.perf_counter()
                canon, _ = to_canonical(ct)
                brain = brain_mask(canon)
                t2 = time.perf_counter()
                image = seg.convention.prepare(canon.data, brain)
                _, plans = run_to_end(seg.probabilities_canonical(image, brain))
                t3 = time.perf_counter()
                stages = {
                    "brain_s": t2 - t1,
                    "network_s": t3 - t2,
                    "slice_equivalents": sum(p.pixels for p in plans) / 512**2,
                    "slices": len(plans),
                    "shape": list(ct.shape),
                }

    gemm = 2 * 2048**3 / timings["gemm"] / 1e9
    fig = {
        "threads": args.threads,
        "engine": fast.name,
        "gemm_gflops": gemm,
        "network_gflop_per_slice": flop_slice / 1e9,
        "eager_ms_per_slice": timings.get("eager", float("nan")) * 1000,
        "fast_ms_per_slice": timings["fast"] * 1000,
        "fast_max_abs_diff": max_diff,
        "torch_engine_max_abs_diff": max_diff_torch,
        "torch_engine_ms_per_slice": timings["torch_fast"] * 1000,
        "fast_gflops": flop_slice / timings["fast"] / 1e9,
        "fast_percent_of_gemm": 100 * flop_slice / timings["fast"] / 1e9 / gemm,
        "eager_percent_of_gemm": 100 * flop_slice / timings.get("eager", float("nan")) / 1e9 / gemm,
        "train_patches_per_s": 8 / timings["train_step"],
        # forward + backward (input and weight gradients) = 3 x the forward FLOPs
        "train_percent_of_gemm": 100
        * 3
        * inception_flops_per_pixel(ds)
        * 64
        * 64
        * 8
        / timings["train_step"]
        / 1e9
        / gemm,
    }
    if case is not None:
        fig |= {"volume_case": case.name, "volume_s": timings["volume"], **stages}
    print(f"threads                          {args.threads}")
    print(f"fp32 GEMM (torch.mm 2048^2)      {gemm:8.1f} GFLOP/s")
    print(
        f"network, 512x512 slice           {fig['network_gflop_per_slice']:8.2f} GFLOP "
        f"({inception_flops_per_pixel(ds)} FLOP/pixel, ds={ds})"
    )
    print(
        f"eager PyTorch (NCHW)             {fig['eager_ms_per_slice']:8.0f} ms/slice "
        f"({fig['eager_percent_of_gemm']:.0f}% of GEMM)"
    )
    print(
        f"torch engine (channels-last)     {fig['torch_engine_ms_per_slice']:8.0f} ms/slice "
        f"(max |p - eager p| {max_diff_torch:.1e})"
    )
    print(
        f"fast engine ({fast.name:11s})      {fig['fast_ms_per_slice']:8.0f} ms/slice "
        f"= {fig['fast_gflops']:.1f} GFLOP/s = {fig['fast_percent_of_gemm']:.0f}% of GEMM "
        f"(max |p - eager p| {max_diff:.1e})"
    )
    if case is not None:
        print(
            f"whole volume {case.name} {tuple(stages['shape'])}: {timings['volume']:.2f} s "
            f"(brain {stages['brain_s']:.2f} s, network {stages['network_s']:.2f} s on "
            f"{stages['slices']} slices = {stages['slice_equivalents']:.1f} full-slice equivalents)"
        )
    print(
        f"training 64x64 batch 8           {fig['train_patches_per_s']:8.1f} patches/s "
        f"({fig['train_percent_of_gemm']:.0f}% of GEMM)"
    )
    if args.json:
        args.json.write_text(json.dumps(fig, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
