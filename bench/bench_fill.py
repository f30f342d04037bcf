"""How well one click of the fill gets a bleed, and how much it spills.

    .venv/bin/python bench/bench_fill.py --data SITE_DIR [--split train] [--json OUT]
    .venv/bin/python bench/bench_fill.py --data SITE_DIR --grid      # the rule's parameters, as chosen

For every bleed of every case (each 3-D part of the manual mask, 26-connected,
27 voxels or more), the 3-D fill is started at the bleed's most interior voxel
(as the reviewer benchmark clicks) with the default blood range, and scored by
its Dice against that bleed and the mL it adds outside it (what a reviewer then
erases). Compared: the fill before issue 22 (the HU range alone, up to the
5 mL limit, and without it) and the application's fill (inside the brain,
stopping at the bleed's edge, :class:`core.annotation.fill.EdgeRule`).
``--grid`` scores the rule's two parameters over a grid: the defaults were
chosen with it on both sites' ``train/`` cases, never on ``test/``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.machine import gemm_gflops
from core.annotation.fill import EdgeRule, fill_region
from core.annotation.stack import AxialStack
from core.annotation.tools import HURange
from core.cases.datasets import list_cases
from core.imaging.brain import brain_mask_canonical
from core.imaging.orientation import to_canonical
from core.io import load_ct, load_mask

LIMIT_ML = 5.0
_S26 = np.ones((3, 3, 3), bool)


def bleeds(truth: np.ndarray, spacing) -> list[tuple[np.ndarray, tuple[int, int, int]]]:
    """Each bleed (3-D part of 27 voxels or more) with its most interior voxel."""
    labels, n = ndimage.label(truth, structure=_S26)
    out = []
    for c in range(1, n + 1):
        part = labels == c
        if np.count_nonzero(part) < 27:
            continue
        dist = ndimage.distance_transform_edt(np.pad(part, 1), sampling=spacing)[1:-1, 1:-1, 1:-1]
        out.append((part, tuple(int(v) for v in np.unravel_index(int(np.argmax(dist)), part.shape))))
    return out


def score(result, part: np.ndarray, voxel_ml: float) -> dict:
    filled = np.zeros(part.shape, bool)
    if result is not None:
        filled[result.region.box] = result.region.mask
    inter = int(np.count_nonzero(filled & part))
    size, n = int(np.count_nonzero(filled)), int(np.count_nonzero(part))
    return {"dice": 2 * inter / (size + n), "spill_ml": (size - inter) * voxel_ml, "ml": size * voxel_ml}


def variants(grid: bool) -> dict[str, dict]:
    big = 2**62
    out = {
        "range, 5 mL limit (before)": {"brain": False, "edge": None, "limit": LIMIT_ML},
        "range, no limit (before, add all)": {"brain": False, "edge": None, "limit": big},
        "brain + edge rule (now)": {"brain": True, "edge": EdgeRule(), "limit": big},
    }
    if grid:
        for below in (10.0, 15.0, 20.0, 25.0):
            for opening in (0.0, 1.0, 1.5, 2.0):
                out[f"brain + edge {below:g} HU, {opening:g} mm"] = {
                    "brain": True,
                    "edge": EdgeRule(below, opening),
                    "limit": big,
                }
    return out


def run(folder: Path, grid: bool) -> list[dict]:
    rows = []
    for case in list_cases(folder, require_masks=True):
        ct = load_ct(case.ct_path)
        canon, reo = to_canonical(ct)
        stack = AxialStack(canon.shape, canon.affine)
        hu = stack.to_stack(canon.data)
        truth = stack.to_stack(reo.to_canonical(load_mask(case.mask_path, ct).data)).astype(bool)
        brain = stack.to_stack(brain_mask_canonical(canon))
        for part, seed in bleeds(truth, stack.spacing):
            row = {"case": f"{folder.parent.name}/{folder.name}/{case.case_id}", "bleed_ml": 0.0, "fills": {}}
            row["bleed_ml"] = float(np.count_nonzero(part)) * ct.voxel_volume_ml
            for name, v in variants(grid).items():
                t0 = time.perf_counter()
                limit = v["limit"] if v["limit"] >= 2**62 else int(v["limit"] / ct.voxel_volume_ml)
                result = fill_region(
                    hu,
                    seed,
                    HURange(),
                    stack.spacing,
                    limit,
                    three_d=True,
                    brain=brain if v["brain"] else None,
                    edge=v["edge"],
                )
                row["fills"][name] = score(result, part, ct.voxel_volume_ml) | {"seconds": time.perf_counter() - t0}
            rows.append(row)
            now = row["fills"]["brain + edge rule (now)"]
            before = row["fills"]["range, 5 mL limit (before)"]
            print(
                f"{row['case']:<22} bleed {row['bleed_ml']:7.2f} mL | before Dice {before['dice']:.2f} "
                f"spill {before['spill_ml']:6.1f} mL | now Dice {now['dice']:.2f} spill {now['spill_ml']:6.1f} mL",
                flush=True,
            )
    return rows


def summary(rows: list[dict]) -> None:
    print(f"\n{len(rows)} bleeds")
    for name in rows[0]["fills"]:
        d = [r["fills"][name]["dice"] for r in rows]
        s = [r["fills"][name]["spill_ml"] for r in rows]
        t = [r["fills"][name]["seconds"] for r in rows]
        print(
            f"{name:<36} Dice mean {np.mean(d):.3f} median {np.median(d):.3f} | spill median {np.median(s):6.2f} "
            f"mean {np.mean(s):7.1f} max {np.max(s):7.1f} mL | {np.median(t):.2f} s"
        )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="a site folder, or a folder of ct/mask pairs")
    ap.add_argument("--split", default="train", help="the site folder's sub-folder (default train)")
    ap.add_argument("--grid", action="store_true", help="also score the edge rule's parameters over a grid")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    print(f"fp32 GEMM (torch.mm 2048^2): {gemm_gflops():.1f} GFLOP/s", flush=True)
    folder = args.data / args.split if (args.data / args.split).is_dir() else args.data
    rows = run(folder, args.grid)
    if rows:
        summary(rows)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
