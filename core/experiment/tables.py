"""Table 2 and the statistics: Dice and volume correlation per model and test
set, their average, Wilcoxon signed-rank tests of MSL against each SSL model,
and false-positive volumes on the normal scans."""

from __future__ import annotations

import csv
import io
import math

import numpy as np

from ..evaluation.inference import Evaluation
from ..evaluation.metrics import pearson, wilcoxon_paired


def _num(x) -> float | None:
    return None if x is None or (isinstance(x, float) and not math.isfinite(x)) else float(x)


def _avg(values) -> float | None:
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if len(vals) == len(values) and vals else None


def model_summary(ev: Evaluation) -> dict:
    d = np.array([c.dice for c in ev.cases])
    pr = pearson([c.manual_ml for c in ev.cases], [c.auto_ml for c in ev.cases])
    fp = [c.auto_ml for c in ev.normal]
    return {
        "n_test": len(ev.cases),
        "mean_dice": float(d.mean()),
        "median_dice": float(np.median(d)),
        "sd_dice": float(d.std(ddof=1)) if d.size > 1 else None,
        "pearson_r": _num(pr.r),
        "pearson_p": _num(pr.p),
        "pearson_note": pr.note,
        "cases": [{"case": c.case, "dice": c.dice, "manual_ml": c.manual_ml, "auto_ml": c.auto_ml} for c in ev.cases],
        "normal": {
            "n": len(fp),
            "mean_fp_ml": float(np.mean(fp)) if fp else None,
            "max_fp_ml": float(np.max(fp)) if fp else None,
            "scans_with_fp": int(sum(v > 0 for v in fp)),
            "cases": [{"case": c.case, "auto_ml": c.auto_ml} for c in ev.normal],
        },
        "model_sha256": ev.model_sha256,
    }


def wilcoxon_tests(scores: dict[str, dict[str, Evaluation]], sites: list[str], ssl_models: list[str]) -> dict:
    """{site: {"MSL vs SSL-A": {...}}}: per-volume Dice, paired by case."""
    out: dict = {}
    for site in sites:
        msl = {c.case: c.dice for c in scores["MSL"][site].cases}
        out[site] = {}
        for ssl in ssl_models:
            other = {c.case: c.dice for c in scores[ssl][site].cases}
            keys = sorted(set(msl) & set(other))
            w = wilcoxon_paired([msl[k] for k in keys], [other[k] for k in keys])
            out[site][f"MSL vs {ssl}"] = {
                "n": w.n,
                "statistic": _num(w.statistic),
                "p": _num(w.p_value),
                "note": w.note,
                "mean_difference": float(np.mean([msl[k] - other[k] for k in keys])) if keys else None,
            }
    return out


def table2_rows(summaries: dict[str, dict[str, dict]], models: list[str], sites: list[str]) -> list[dict]:
    """One row per model: Dice and Pearson r per test set, then their averages."""
    rows = []
    for m in models:
        row: dict = {"model": m}
        for s in sites:
            row[f"dice_site_{s}"] = summaries[m][s]["mean_dice"]
            row[f"r_site_{s}"] = summaries[m][s]["pearson_r"]
        row["dice_average"] = _avg([summaries[m][s]["mean_dice"] for s in sites])
        row["r_average"] = _avg([summaries[m][s]["pearson_r"] for s in sites])
        rows.append(row)
    return rows


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def table2_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: (v if isinstance(v, str) else ("" if v is None else f"{v:.4f}")) for k, v in r.items()})
    return buf.getvalue()


def table2_markdown(rows: list[dict], sites: list[str], n_test: dict[str, int]) -> str:
    head = ["model"] + [f"site {s} data (n={n_test[s]})" for s in sites] + ["average"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["model"]] + [f"{_fmt(r[f'dice_site_{s}'])} / {_fmt(r[f'r_site_{s}'])}" for s in sites]
        cells.append(f"{_fmt(r['dice_average'])} / {_fmt(r['r_average'])}")
        lines.append("| " + " | ".join(cells) + " |")
    return (
        "Table 2: mean per-volume Dice / Pearson r of manual vs automatic hematoma volumes.\n\n"
        + "\n".join(lines)
        + "\n\nn/a: Pearson r needs at least 3 test volumes with "
        "non-constant volumes.\n"
    )


def significance_mark(p: float | None) -> str:
    if p is None:
        return "n/a"
    return "***" if p < 0.001 else "**" if p < 0.01 else "*" if p < 0.05 else "n.s."
