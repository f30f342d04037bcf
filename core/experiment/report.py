"""``report.html``: one self-contained page (figures embedded as base64)."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

from .tables import significance_mark

PAPER_TABLE2 = (
    "Paper (Remedios et al. 2019), Dice / r on NIH data, VUMC data, average: "
    "NIH SSL 0.512 / 0.913, 0.690 / 0.752, 0.601 / 0.832; "
    "VUMC SSL 0.407 / 0.859, 0.745 / 0.754, 0.576 / 0.807; "
    "MSL 0.552 / 0.943, 0.725 / 0.791, 0.63 / 0.867."
)


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _f(x, digits: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def render(out: Path, stats: dict, figures: dict[str, Path]) -> str:
    sites = list(stats["plan"]["sites"])
    models = [r["model"] for r in stats["table2"]]
    e = html.escape
    rows = []
    for r in stats["table2"]:
        cells = "".join(f"<td>{_f(r[f'dice_site_{s}'])} / {_f(r[f'r_site_{s}'])}</td>" for s in sites)
        rows.append(f"<tr><th>{e(r['model'])}</th>{cells}<td>{_f(r['dice_average'])} / {_f(r['r_average'])}</td></tr>")
    head = "".join(f"<th>site {e(s)} data (n={stats['models'][models[0]][s]['n_test']})</th>" for s in sites)
    tests = []
    for s in sites:
        for name, t in stats["wilcoxon"][s].items():
            tests.append(
                f"<tr><td>site {e(s)}</td><td>{e(name)}</td><td>{t['n']}</td>"
                f"<td>{_f(t['mean_difference'])}</td><td>{_f(t['p'], 4)}</td>"
                f"<td>{significance_mark(t['p'])}</td><td>{e(t['note'])}</td></tr>"
            )
    fp = []
    for m in models:
        for s in sites:
            n = stats["models"][m][s]["normal"]
            fp.append(
                f"<tr><td>{e(m)}</td><td>site {e(s)}</td><td>{n['n']}</td><td>{_f(n['mean_fp_ml'], 2)}"
                f"</td><td>{_f(n['max_fp_ml'], 2)}</td><td>{n['scans_with_fp']}</td></tr>"
            )
    timing = "".join(f"<tr><td>{e(k)}</td><td>{v:.1f}</td></tr>" for k, v in stats["timings_s"].items())
    models_info = "".join(
        f"<tr><td>{e(m)}</td><td><code>models/{e(m)}/model.safetensors</code></td>"
        f"<td><code>{e(i['sha256'][:16])}</code></td><td>{e(i['version'])}</td></tr>"
        for m, i in stats["model_files"].items()
    )
    ring = stats["ring"]
    conv = ring.get("convergence") or {}
    figs = "".join(f"<figure>{_img(p, name)}<figcaption>{e(name)}</figcaption></figure>" for name, p in figures.items())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Hematoma Relay experiment: SSL vs MSL</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #bbb;padding:4px 8px;text-align:left}}
img{{max-width:100%}}figure{{margin:1em 0}}pre{{background:#f4f4f4;padding:8px;overflow:auto}}</style></head>
<body><h1>Single-site vs multi-site learning (Table 2, Figures 3-5)</h1>
<p>Three models from one initialisation (seed {stats["plan"]["config"]["seed"]}): SSL on each site, and MSL
trained by cyclic weight transfer through the ring at <code>{e(ring["server"])}</code>
({ring["turns"]} turns, one epoch each; best weights version {ring["best_version"]} from site
{e(str(ring["best_site"]))}). Convergence: {e(conv.get("rule", "n/a"))}: {e(conv.get("explanation", ""))}</p>
<h2>Table 2: mean per-volume Dice / Pearson r of volumes</h2>
<table><tr><th>model</th>{head}<th>average</th></tr>{"".join(rows)}</table>
<p><small>{e(PAPER_TABLE2)}</small></p>
<h2>Wilcoxon signed-rank tests of per-volume Dice</h2>
<table><tr><th>test set</th><th>comparison</th><th>n</th><th>mean difference</th><th>p</th><th></th><th>note</th></tr>
{"".join(tests)}</table>
<h2>False positives on normal scans (mL)</h2>
<table><tr><th>model</th><th>normal scans</th><th>n</th><th>mean</th><th>max</th><th>scans with any</th></tr>
{"".join(fp)}</table>
<h2>Figures</h2>{figs}
<h2>Models</h2><table><tr><th>model</th><th>file</th><th>sha256</th><th>version</th></tr>{models_info}</table>
<h2>Timings (seconds)</h2><table>{timing}</table>
<h2>Configuration</h2><pre>{e(json.dumps(stats["plan"], indent=1))}</pre>
<p><small>Versions: {e(json.dumps(stats["versions"]))}</small></p>
</body></html>
"""
