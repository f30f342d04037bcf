"""The reviewer benchmark: how many clicks a reviewer needs to make a mask right.

    .venv/bin/python bench/bench_correction.py --data SITE_DIR [--model W] [--json OUT] [--budget 30]
    .venv/bin/python bench/bench_correction.py --cases LIST.txt ...   # one CT path per line

``--data`` takes any site folder: its ``test/`` cases when it has that folder
(CT + mask pairs), else the pairs in the folder itself. ``--model`` defaults to
the shipped default model. For every case it prints the manual volume, the
automatic Dice, and for each way of working (from an empty mask or from the
automatic prediction; with today's tools or with the click tool): the clicks
needed to reach Dice 0.85 against the manual mask (budget 30; a case that
never gets there counts 30 and is marked ``*``) and the Dice after 1, 3 and 5
clicks; then means and medians, and the click tool's latency (median, p95).
``--json`` writes the same per case. The machine's fp32 matrix-multiply rate
is printed as the reference.

The simulated reviewer (rules fixed so that figures compare):

- the manual mask is the truth; the reviewer works on the largest error
  component (3-D, 26-connected; false negatives win ties) and clicks at its
  most interior voxel (maximum of the anisotropic distance transform);
- with today's tools it takes the tool with the best Dice gain per click, as a
  reviewer seeing each tool's preview would: fill in the slice or in 3-D
  (1 click; the application's fill, inside the brain, stopping at the bleed's
  edge), fill with an HU range adjusted to the error (2), "add all" beyond the
  fill limit (3), interpolation between drawn slices (1), threshold box around
  the error on its slice (1), delete part (1), brush or eraser on one slice
  (ceil(thickness / brush diameter) strokes, painting that slice's error
  exactly; the brush is the application's default, 4 mm);
- with the click tool, the click tool is one more tool (1 click: positive on a
  missed bleed, negative on a false one, all clicks of the session together, as
  in the application), taken when its gain is the best per click (ties go to the
  click); using another tool accepts the click session first;
- it stops at Dice 0.85 or when the budget is spent.

The click tool and the tools are the application's own functions
(:mod:`core.annotation`), not copies.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.machine import gemm_gflops
from core.annotation.click_segment import Click, ClickContext, prepare_clicks
from core.annotation.fill import FILL_LIMIT_ML_DEFAULT, fill_region
from core.annotation.interpolate import interpolate_between_slices
from core.annotation.stack import AxialStack
from core.annotation.tools import HURange
from core.cases.case_files import Case, case_id, existing_mask
from core.cases.datasets import list_cases
from core.evaluation.inference import THRESHOLD, Segmenter
from core.evaluation.metrics import remove_small_components
from core.imaging.orientation import to_canonical
from core.io import load_ct, load_mask
from core.model.default import load_default_model
from core.model.weights import load_weights
from core.progress import run_to_end

TARGET = 0.85
BUDGET = 30
BRUSH_MM = 4.0  # the application's default brush diameter
CHECKPOINTS = (1, 3, 5)
_S26 = np.ones((3, 3, 3), bool)


# --------------------------------------------------------------------- one case
@dataclass
class CaseData:
    label: str
    hu: np.ndarray  # stack layout
    truth: np.ndarray  # stack layout bool
    spacing: tuple[float, float, float]  # (slice, row, col) mm
    voxel_ml: float
    context: ClickContext  # the click tool's case state (also gives the brain and the automatic mask)

    @property
    def brain(self) -> np.ndarray:
        return self.context.brain


@dataclass
class Step:
    clicks: int  # cumulative
    dice: float
    tool: str


@dataclass
class Trace:
    start_dice: float
    steps: list[Step] = field(default_factory=list)

    def dice_after(self, n: int) -> float:
        d = self.start_dice
        for s in self.steps:
            if s.clicks > n:
                break
            d = s.dice
        return d

    def clicks_to(self, target: float, budget: int) -> tuple[int, bool]:
        """(clicks, reached): clicks spent when Dice first reached ``target``."""
        if self.start_dice >= target:
            return 0, True
        for s in self.steps:
            if s.dice >= target and s.clicks <= budget:
                return s.clicks, True
        return budget, False


def dice_of(inter: int, size: int, truth_size: int) -> float:
    return 2.0 * inter / (size + truth_size) if size + truth_size else 1.0


class Reviewer:
    """The simulated reviewer on one case, from one starting mask."""

    def __init__(self, case: CaseData, use_clicks: bool, budget: int = BUDGET, legacy_fill: bool = False) -> None:
        self.case = case
        self.use_clicks = use_clicks
        self.legacy_fill = legacy_fill
        self.budget = budget
        self.truth_size = int(np.count_nonzero(case.truth))
        self.latencies: list[float] = []

    def run(self, start: np.ndarray) -> Trace:
        mask = start.astype(bool).copy()
        trace = Trace(self._dice(mask))
        spent = 0
        session_start, session_clicks = mask.copy(), []
        while spent < self.budget and self._dice(mask) < TARGET:
            error = self.largest_error(mask)
            if error is None:
                break
            positive, region, seed = error
            now = self._dice(mask)
            name, cost, new = self._best_tool(mask, positive, region, seed)
            if self.use_clicks:
                # the click tool is one more tool: its preview is the session's mask with this click
                clicks = session_clicks + [Click(*seed, positive=positive)]
                result = self.case.context.segment(session_start.astype(np.uint8), clicks)
                self.latencies.append(result.seconds)
                clicked = result.mask.astype(bool)
                gain = self._dice(clicked) - now
                if gain > 0 and gain >= (self._dice(new) - now) / cost:  # ties go to the click
                    mask, session_clicks = clicked, clicks
                    spent += 1
                    trace.steps.append(Step(spent, self._dice(mask), "click " + ("+" if positive else "-")))
                    continue
            spent += cost
            mask = new
            trace.steps.append(Step(spent, self._dice(mask), name))
            session_start, session_clicks = mask.copy(), []  # a tool ends the click session (Enter)
        return trace

    # ----------------------------------------------------------- errors
    def _dice(self, mask: np.ndarray) -> float:
        return dice_of(int(np.count_nonzero(mask & self.case.truth)), int(np.count_nonzero(mask)), self.truth_size)

    def largest_error(self, mask: np.ndarray) -> tuple[bool, np.ndarray, tuple[int, int, int]] | None:
        best: tuple[int, bool, np.ndarray] | None = None
        for positive, err in ((True, self.case.truth & ~mask), (False, mask & ~self.case.truth)):
            if not err.any():
                continue
            labels, _ = ndimage.label(err, structure=_S26)
            sizes = np.bincount(labels.ravel())[1:]
            biggest = int(np.argmax(sizes))
            if best is None or sizes[biggest] > best[0]:  # false negatives win ties (they come first)
                best = (int(sizes[biggest]), positive, labels == biggest + 1)
        if best is None:
            return None
        _, positive, region = best
        return positive, region, most_interior(region, self.case.spacing)

    # ----------------------------------------------------------- today's tools
    def _best_tool(self, mask, positive, region, seed) -> tuple[str, int, np.ndarray]:
        candidates: list[tuple[str, int, Callable[[], np.ndarray | None]]] = []
        k = seed[0]
        if positive:
            default = HURange()
            adjusted = self._adjusted_range(region)
            fills = {}  # one fill per (range, 3-D) gives both its limited part and "add all"

            def fill(hu_range: HURange, three_d: bool, limited: bool) -> np.ndarray | None:
                key = (hu_range, three_d)
                if key not in fills:
                    fills[key] = self._fill(seed, hu_range, three_d)
                return self._apply_fill(mask, fills[key], limited)

            candidates += [
                ("fill", 1, lambda: fill(default, False, True)),
                ("fill 3-D", 1, lambda: fill(default, True, True)),
                ("fill, adjusted range", 2, lambda: fill(adjusted, False, True)),
                ("fill 3-D, adjusted range", 2, lambda: fill(adjusted, True, True)),
                ("fill 3-D, add all", 3, lambda: fill(default, True, False)),
                ("interpolate", 1, lambda: self._interpolate(mask)),
                ("threshold box", 1, lambda: self._threshold_box(mask, region, k, default)),
            ]
        else:
            candidates.append(("delete part", 1, lambda: self._delete_part(mask, seed)))
        strokes = strokes_for(region[k], self.case.spacing[1:])
        slice_fix = mask.copy()
        slice_fix[k] = np.where(region[k], positive, slice_fix[k])
        best = ("brush" if positive else "eraser", strokes, slice_fix)
        best_rate = (self._dice(slice_fix) - self._dice(mask)) / strokes
        now = self._dice(mask)
        for name, cost, make in candidates:
            new = make()
            if new is None:
                continue
            rate = (self._dice(new) - now) / cost
            if rate > best_rate:
                best, best_rate = (name, cost, new), rate
        return best

    def _adjusted_range(self, region: np.ndarray) -> HURange:
        values = self.case.hu[region]
        low, high = np.percentile(values, [5, 95])
        return HURange(float(np.floor(low)), float(np.ceil(high)))

    def _fill(self, seed, hu_range: HURange, three_d: bool):
        """The application's fill (inside the brain, stopping at the bleed's edge,
        with the 5 mL limit), or the fill before issue 22 with ``legacy_fill``."""
        limit = int(FILL_LIMIT_ML_DEFAULT / self.case.voxel_ml)
        if self.legacy_fill:
            return fill_region(self.case.hu, seed, hu_range, self.case.spacing, limit, three_d=three_d, edge=None)
        return fill_region(
            self.case.hu, seed, hu_range, self.case.spacing, limit, three_d=three_d, brain=self.case.brain
        )

    @staticmethod
    def _apply_fill(mask, result, limited: bool) -> np.ndarray | None:
        if result is None or (not limited and not result.limited):
            return None  # "add all" exists only when the fill hit its limit
        region = result.region if limited else result.whole
        out = mask.copy()
        out[region.box] |= region.mask
        return out

    def _interpolate(self, mask) -> np.ndarray | None:
        result = interpolate_between_slices(mask, 0, self.case.spacing)
        if result.region is None:
            return None
        out = mask.copy()
        out[result.region.box] |= result.region.mask
        return out

    def _threshold_box(self, mask, region, k, hu_range: HURange) -> np.ndarray | None:
        rows = np.flatnonzero(region[k].any(axis=1))
        cols = np.flatnonzero(region[k].any(axis=0))
        if rows.size == 0:
            return None
        box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
        out = mask.copy()
        out[k][box] |= hu_range.contains(self.case.hu[k][box])
        return out

    def _delete_part(self, mask, seed) -> np.ndarray | None:
        if not mask[seed]:
            return None
        labels, _ = ndimage.label(mask, structure=_S26)
        out = mask.copy()
        out[labels == labels[seed]] = False
        return out


def most_interior(region: np.ndarray, spacing: tuple[float, float, float]) -> tuple[int, int, int]:
    """The voxel of ``region`` farthest (mm) from its outside, computed on its bounding box."""
    idx = np.nonzero(region)
    box = tuple(slice(max(int(a.min()) - 1, 0), int(a.max()) + 2) for a in idx)
    sub = np.pad(region[box], 1)
    dist = ndimage.distance_transform_edt(sub, sampling=spacing)[1:-1, 1:-1, 1:-1]
    local = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return tuple(int(v + b.start) for v, b in zip(local, box))  # type: ignore[return-value]


def strokes_for(region2d: np.ndarray, pixel_mm: tuple[float, float]) -> int:
    """Brush strokes to paint a slice's region: ceil(thickness / brush diameter),
    thickness = twice the largest in-plane distance to the region's outside."""
    if not region2d.any():
        return 1
    dist = ndimage.distance_transform_edt(np.pad(region2d, 1), sampling=pixel_mm)
    return max(1, math.ceil(2.0 * float(dist.max()) / BRUSH_MM))


# --------------------------------------------------------------------- cases
def load_case(ct_path: Path, mask_path: Path, segmenter: Segmenter) -> CaseData:
    ct = load_ct(ct_path)
    canon, reo = to_canonical(ct)
    stack = AxialStack(canon.shape, canon.affine)
    hu = stack.to_stack(canon.data)
    truth = stack.to_stack(reo.to_canonical(load_mask(mask_path, ct).data)).astype(bool)
    context = run_to_end(prepare_clicks(hu, stack, segmenter))
    label = f"{ct_path.parent.parent.name}/{ct_path.parent.name}/{case_id(ct_path)}"
    return CaseData(label, hu, truth, stack.spacing, ct.voxel_volume_ml, context)


def automatic_mask(case: CaseData) -> np.ndarray:
    """The application's automatic prediction (probability > 0.5, parts of 27 voxels or more)."""
    return remove_small_components(case.context.prob > THRESHOLD, 27).astype(bool)


CONDITIONS = (("empty", "tools"), ("empty", "clicks"), ("auto", "tools"), ("auto", "clicks"))
# with --old-fill: today's tools with the fill before issue 22 (HU range and 5 mL limit only)
OLD_FILL_CONDITIONS = (("empty", "tools, old fill"), ("auto", "tools, old fill"))


def conditions_of(rows: list[dict]) -> list[tuple[str, str]]:
    return [c for c in CONDITIONS + OLD_FILL_CONDITIONS if rows and f"{c[0]}/{c[1]}" in rows[0]]


def run_case(case: CaseData, budget: int, old_fill: bool = False) -> dict:
    auto = automatic_mask(case)
    truth_size = int(np.count_nonzero(case.truth))
    row: dict = {
        "case": case.label,
        "manual_ml": truth_size * case.voxel_ml,
        "auto_ml": float(np.count_nonzero(auto)) * case.voxel_ml,
        "auto_dice": dice_of(int(np.count_nonzero(auto & case.truth)), int(np.count_nonzero(auto)), truth_size),
        "latency_s": [],
    }
    for start_name, tools in CONDITIONS + (OLD_FILL_CONDITIONS if old_fill else ()):
        reviewer = Reviewer(case, use_clicks=tools == "clicks", budget=budget, legacy_fill="old fill" in tools)
        # each session starts from the automatic probabilities: clicks of another run do not carry over
        case.context.segment(np.zeros(case.truth.shape, np.uint8), [])
        start = auto if start_name == "auto" else np.zeros(case.truth.shape, bool)
        t0 = time.perf_counter()
        trace = reviewer.run(start)
        clicks, reached = trace.clicks_to(TARGET, budget)
        row[f"{start_name}/{tools}"] = {
            "clicks": clicks,
            "reached": reached,
            **{f"dice_after_{n}": trace.dice_after(n) for n in CHECKPOINTS},
            "final_dice": trace.steps[-1].dice if trace.steps else trace.start_dice,
            "tools_used": [s.tool for s in trace.steps],
            "seconds": time.perf_counter() - t0,
        }
        row["latency_s"] += reviewer.latencies
    return row


def run_cases(ct_paths: list[Path], model: Path | None, budget: int = BUDGET, old_fill: bool = False) -> list[dict]:
    weights = load_weights(model) if model else load_default_model()
    segmenter = Segmenter(weights)
    rows = []
    for ct_path in ct_paths:
        mask = existing_mask(ct_path.parent, case_id(ct_path))
        if mask is None:
            raise SystemExit(f"{ct_path}: no mask beside it; the benchmark needs the manual mask as the truth.")
        case = load_case(ct_path, mask, segmenter)
        row = run_case(case, budget, old_fill)
        rows.append(row)
        print_row(row, flush=True)
    return rows


# --------------------------------------------------------------------- output
def _cell(r: dict, cond: str) -> str:
    c = r[cond]
    mark = "" if c["reached"] else "*"
    return f"{c['clicks']:>2}{mark:1} " + " ".join(f"{c[f'dice_after_{n}']:.2f}" for n in CHECKPOINTS)


def header(conditions) -> str:
    return (
        f"{'case':<20} {'mL':>6} {'auto':>5} | "
        + " | ".join(f"{s + '/' + t:<20}" for s, t in conditions)
        + "\n"
        + f"{'':<20} {'':>6} {'Dice':>5} | "
        + " | ".join(f"{'clk  D@1  D@3  D@5':<20}" for _ in conditions)
    )


def print_row(r: dict, flush: bool = False) -> None:
    cells = " | ".join(f"{_cell(r, f'{s}/{t}'):<20}" for s, t in conditions_of([r]))
    print(f"{r['case']:<20} {r['manual_ml']:>6.1f} {r['auto_dice']:>5.2f} | {cells}", flush=flush)


def pooled_summary(rows: list[dict]) -> dict:
    out: dict = {"n": len(rows), "auto_dice_mean": float(np.mean([r["auto_dice"] for r in rows]))}
    for s, t in conditions_of(rows):
        cond = f"{s}/{t}"
        clicks = [r[cond]["clicks"] for r in rows]
        out[cond] = {
            "clicks_mean": float(np.mean(clicks)),
            "clicks_median": float(np.median(clicks)),
            "clicks_max": int(np.max(clicks)),
            "not_reached": int(sum(1 for r in rows if not r[cond]["reached"])),
            **{f"dice_after_{n}_mean": float(np.mean([r[cond][f"dice_after_{n}"] for r in rows])) for n in CHECKPOINTS},
            "eraser_or_delete_share": _erase_share(rows, cond),
        }
    lat = [v for r in rows for v in r["latency_s"]]
    if lat:
        out["latency_median_s"] = float(np.median(lat))
        out["latency_p95_s"] = float(np.percentile(lat, 95))
        out["latency_n"] = len(lat)
    return out


def _erase_share(rows: list[dict], cond: str) -> float | None:
    """Share of the tool uses that removed something (eraser, delete part, negative clicks)."""
    used = [t for r in rows for t in r[cond]["tools_used"]]
    if not used:
        return None
    return sum(1 for t in used if t in ("eraser", "delete part", "click -")) / len(used)


def print_table(rows: list[dict]) -> dict:
    print(header(conditions_of(rows)))
    for r in rows:
        print_row(r)
    s = pooled_summary(rows)
    print(f"\n{len(rows)} cases; automatic Dice mean {s['auto_dice_mean']:.3f}")
    for c in (f"{a}/{b}" for a, b in conditions_of(rows)):
        v = s[c]
        print(
            f"{c:<13} clicks to Dice {TARGET}: mean {v['clicks_mean']:.1f}, median {v['clicks_median']:.1f}, "
            f"max {v['clicks_max']}, not reached {v['not_reached']}; Dice after 1/3/5: "
            + "/".join(f"{v[f'dice_after_{n}_mean']:.2f}" for n in CHECKPOINTS)
            + (
                f"; removing {100 * v['eraser_or_delete_share']:.0f}% of tool uses"
                if v["eraser_or_delete_share"]
                else ""
            )
        )
    if "latency_p95_s" in s:
        print(
            f"click latency: median {1000 * s['latency_median_s']:.0f} ms, p95 {1000 * s['latency_p95_s']:.0f} ms "
            f"(n={s['latency_n']})"
        )
    return s


def case_paths(data: Path | None, cases_file: Path | None) -> list[Path]:
    if cases_file is not None:
        return [Path(line) for line in cases_file.read_text().split()]
    assert data is not None
    folder = data / "test" if (data / "test").is_dir() else data
    found: list[Case] = list_cases(folder, require_masks=True)
    if not found:
        raise SystemExit(f"{folder}: no ct_NNN + mask_NNN pairs.")
    return [c.ct_path for c in found]


def main() -> int:
    ap = argparse.ArgumentParser(description="How many clicks a reviewer needs to correct a hematoma mask.")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", type=Path, help="a site folder (its test/ cases) or a folder of ct/mask pairs")
    src.add_argument("--cases", type=Path, help="a file with one CT path per line (masks beside them)")
    ap.add_argument("--model", type=Path, default=None, help="weights file (default: the shipped default model)")
    ap.add_argument("--json", type=Path, default=None, help="write the per-case results here")
    ap.add_argument("--budget", type=int, default=BUDGET)
    ap.add_argument("--old-fill", action="store_true", help="also today's tools with the fill before issue 22")
    args = ap.parse_args()
    print(f"fp32 GEMM (torch.mm 2048^2): {gemm_gflops():.1f} GFLOP/s", flush=True)
    print(header(CONDITIONS + (OLD_FILL_CONDITIONS if args.old_fill else ())), flush=True)
    rows = run_cases(case_paths(args.data, args.cases), args.model, args.budget, args.old_fill)
    print()
    summary = print_table(rows)
    if args.json:
        args.json.write_text(json.dumps({"cases": rows, "summary": summary}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
