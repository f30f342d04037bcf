"""Figures 3-5 of the paper, drawn on matplotlib ``Figure`` objects with the Agg
canvas: no display, and no change to pyplot's global backend for whoever else
uses matplotlib in the same process."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..io.atomic import atomic_path
from .scoring import ExampleSlice
from .tables import significance_mark

BRAIN_WINDOW = (0.0, 80.0)  # HU: level 40, width 80
_COLORS = {"MSL": "#d95f02"}
_METADATA = {"Software": None}  # keep the PNG bytes independent of the matplotlib version


def _figure(**kw) -> Figure:
    fig = Figure(**kw)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, metadata=_METADATA)
    return path


def dice_boxplot(path: Path, site: str, dice: dict[str, list[float]], tests: dict[str, dict]) -> Path:
    """Per-volume Dice of each model on one site's test set (Figures 4-5), with
    brackets MSL vs each SSL model marked by the Wilcoxon p."""
    models = list(dice)
    fig = _figure(figsize=(1.6 + 1.3 * len(models), 4.2))
    ax = fig.subplots()
    bp = ax.boxplot([dice[m] for m in models], patch_artist=True, widths=0.55)
    ax.set_xticks(range(1, len(models) + 1), models)
    for patch, m in zip(bp["boxes"], models):
        patch.set_facecolor(_COLORS.get(m, "#7570b3"))
        patch.set_alpha(0.55)
    rng = np.random.default_rng(0)
    for i, m in enumerate(models, start=1):
        ax.scatter(i + rng.uniform(-0.12, 0.12, len(dice[m])), dice[m], s=14, color="k", zorder=3)
    top = 1.04
    msl = models.index("MSL") + 1
    for name, t in tests.items():
        other = models.index(name.split(" vs ")[1]) + 1
        lo, hi = sorted((msl, other))
        ax.plot([lo, lo, hi, hi], [top, top + 0.02, top + 0.02, top], color="k", lw=1)
        p = "n/a" if t["p"] is None else f"p={t['p']:.3g}"
        ax.text((lo + hi) / 2, top + 0.025, f"{significance_mark(t['p'])} ({p})", ha="center", va="bottom", fontsize=8)
        top += 0.1
    ax.set_ylim(-0.02, top + 0.05)
    ax.set_ylabel("Dice per test volume")
    ax.set_title(f"Test data of site {site} (n={len(dice[models[0]])})")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def examples_figure(path: Path, examples: list[ExampleSlice], models: list[str]) -> Path:
    """Figure 3: per site, a CT slice in the brain window, the manual mask, and
    each model's mask with its Dice on that slice."""
    cols = 2 + len(models)
    fig = _figure(figsize=(2.3 * cols, 2.5 * len(examples)))
    axes = fig.subplots(len(examples), cols, squeeze=False)
    for row, ex in zip(axes, examples):
        aspect = ex.spacing[0] / ex.spacing[1]
        panels = [("CT", None), ("manual", ex.manual)] + [(m, ex.predicted[m]) for m in models]
        for ax, (title, mask) in zip(row, panels):
            ax.imshow(
                ex.ct, cmap="gray", vmin=BRAIN_WINDOW[0], vmax=BRAIN_WINDOW[1], aspect=aspect, interpolation="nearest"
            )
            if mask is not None:
                overlay = np.ma.masked_where(mask == 0, mask)
                ax.imshow(overlay, cmap="autumn", alpha=0.6, aspect=aspect, vmin=0, vmax=1, interpolation="nearest")
            if title == "CT":
                title = f"site {ex.site}: CT"
            elif title != "manual":
                title = f"{title}: Dice {ex.slice_dice(title):.2f}"
            ax.set_title(title, fontsize=9)
            ax.axis("off")
    fig.tight_layout()
    return _save(fig, path)
