"""Start-up of the ``hemarelay`` command: whole-process wall time of
``--version`` and ``--help`` (median of 5 runs each, after one warm-up run) and
the peak memory of the process, with the machine's fp32 GEMM rate measured in
the same run as the reference. Targets (issue 13): --version under 0.3 s,
--help under 0.5 s, neither loading torch.

    .venv/bin/python bench/bench_startup.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from machine import gemm_gflops  # bench/machine.py, beside this script

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"--version": 0.3, "--help": 0.5}


def command() -> list[str]:
    script = Path(sys.executable).parent / "hemarelay"  # the installed console script
    return [str(script)] if script.exists() else [sys.executable, "-m", "core"]


def time_runs(args: list[str], runs: int) -> tuple[list[float], float]:
    """Wall seconds of each run, and the largest peak RSS (MB) of the children."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    subprocess.run(command() + args, cwd=ROOT, env=env, capture_output=True, check=True)  # warm-up
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(command() + args, cwd=ROOT, env=env, capture_output=True, check=True)
        times.append(time.perf_counter() - t)
    rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return times, rss_mb


def torch_loaded(args: list[str]) -> bool:
    code = (
        "import sys; from core import cli\n"
        f"try:\n    cli.main({args!r})\nexcept SystemExit:\n    pass\n"
        "print('torch' in sys.modules)"
    )
    r = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    return r.stdout.strip().splitlines()[-1] == "True"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    print(f"command: {' '.join(command())}; cpu cores: {os.cpu_count()}; load average: {os.getloadavg()[0]:.2f}")
    ok = True
    for flag, target in TARGETS.items():
        times, rss = time_runs([flag], args.runs)
        median = statistics.median(times)
        torch = torch_loaded([flag])
        good = median < target and not torch
        ok &= good
        print(
            f"hemarelay {flag:10s} median {median:.3f} s (runs {', '.join(f'{t:.3f}' for t in times)}), "
            f"target < {target} s; peak RSS so far {rss:.0f} MB; torch loaded: {torch} "
            f"[{'ok' if good else 'MISSED'}]"
        )
    print(f"fp32 GEMM (torch.mm 2048^2, this run): {gemm_gflops():.1f} GFLOP/s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
