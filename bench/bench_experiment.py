"""The whole paper experiment on the shared CT-ICH data, timed, with Table 2
printed next to the paper's.

    .venv/bin/python bench/bench_experiment.py [--preset experiment-cpu] [--out DIR]
        [--set key=value ...] [--server URL] [--resume]
    .venv/bin/python bench/bench_experiment.py --summarize DIR   # an experiment already run

Prints the wall time of each step (training SSL per site, the MSL ring,
evaluation, report), the total, Table 2 (mean per-volume Dice / Pearson r of
volumes per test set and their average), the paper's Table 2, the Wilcoxon
tests and the false-positive volumes on the normal scans. The experiment-cpu
preset is meant to finish in under 30 minutes on 2 CPU cores; the paper
preset is for a GPU.
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

PAPER = {  # Dice / r on NIH data (site a here), VUMC data (site b), average
    "NIH SSL (SSL-A)": ((0.512, 0.913), (0.690, 0.752), (0.601, 0.832)),
    "VUMC SSL (SSL-B)": ((0.407, 0.859), (0.745, 0.754), (0.576, 0.807)),
    "MSL": ((0.552, 0.943), (0.725, 0.791), (0.63, 0.867)),
}


def _f(x) -> str:
    return "  n/a" if x is None else f"{x:.3f}"


def summarize(out: Path, wall_s: float | None = None) -> None:
    stats = json.loads((out / "stats.json").read_text())
    steps = {p.stem: json.loads(p.read_text()).get("seconds", 0.0) for p in sorted((out / "steps").glob("*.json"))}
    print(f"experiment in {out} (preset {stats['plan']['config']['preset'] or 'custom'})")
    for name, s in steps.items():
        print(f"  {name:<14} {s:8.1f} s")
    print(f"  {'sum of steps':<14} {sum(steps.values()):8.1f} s = {sum(steps.values()) / 60:.1f} min")
    if wall_s is not None:
        print(f"  {'wall time':<14} {wall_s:8.1f} s = {wall_s / 60:.1f} min")
    sites = list(stats["plan"]["sites"])
    print("\nTable 2 (this run): Dice / r per test set, average")
    for r in stats["table2"]:
        cells = "   ".join(f"{_f(r[f'dice_site_{s}'])} / {_f(r[f'r_site_{s}'])}" for s in sites)
        print(f"  {r['model']:<18} {cells}   {_f(r['dice_average'])} / {_f(r['r_average'])}")
    print("Table 2 (paper): NIH data, VUMC data, average")
    for name, cols in PAPER.items():
        print(f"  {name:<18} " + "   ".join(f"{d:.3f} / {c:.3f}" for d, c in cols))
    print("\nWilcoxon signed-rank, per-volume Dice")
    for s in sites:
        for name, t in stats["wilcoxon"][s].items():
            p = "n/a" if t["p"] is None else f"{t['p']:.4f}"
            print(f"  site {s} {name}: n={t['n']}, mean difference {_f(t['mean_difference'])}, p={p} {t['note']}")
    print("\nFalse-positive volume on normal scans (mean / max mL)")
    for m, by_site in stats["models"].items():
        print(
            f"  {m:<6} "
            + "   ".join(
                f"site {s}: {by_site[s]['normal']['mean_fp_ml']:.2f} / {by_site[s]['normal']['max_fp_ml']:.2f}"
                for s in sites
            )
        )
    ring = stats["ring"]
    conv = ring.get("convergence") or {}
    print(
        f"\nMSL ring: {ring['turns']} turns, best version {ring['best_version']} (site {ring['best_site']}), "
        f"{conv.get('rule')}: {conv.get('explanation')}"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="experiment-cpu")
    ap.add_argument("--set", action="append", default=[], dest="overrides")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--server")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--summarize", type=Path, metavar="DIR", help="only print an existing experiment's figures")
    args = ap.parse_args()
    if args.summarize:
        summarize(args.summarize)
        return 0
    from core.cli import main as cli

    root = shared_data_root() / "ctich"
    out = args.out or Path(tempfile.mkdtemp(prefix="hemarelay-experiment-"))
    argv = [
        "experiment",
        "--site",
        f"a={root / 'site-a'}",
        "--site",
        f"b={root / 'site-b'}",
        "--out",
        str(out),
        "--preset",
        args.preset,
    ]
    for o in args.overrides:
        argv += ["--set", o]
    if args.server:
        argv += ["--server", args.server]
    if args.resume:
        argv.append("--resume")
    t0 = time.monotonic()
    rc = cli(argv)
    if rc == 0:
        summarize(out, time.monotonic() - t0)
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
