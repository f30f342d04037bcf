"""The reviewer benchmark runs on any site folder: a phantom head written as a
site folder, a network that takes clicks (untrained: the benchmark's mechanics,
not the model, are under test), two clicks of budget, and the per-case JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from core.imaging.volume import Volume
from core.io import save_mask, save_volume
from core.model.architectures import build_network
from core.model.input import InputConvention
from core.model.weights import WeightsMeta, save_weights

ROOT = Path(__file__).resolve().parents[2]


def _phantom_site(folder: Path) -> None:
    """A skull ring (1 mm pixels, 5 mm slices) around brain with a 70 HU bleed."""
    n = 120
    i, j = np.mgrid[:n, :n]
    r = np.hypot(i - n / 2, j - n / 2)
    sl = np.where(r < 45, 32, np.where(r < 50, 1000, np.where(r < 53, 40, -1000))).astype(np.int16)
    data = np.repeat(sl[:, :, None], 12, axis=2)
    data[:, :, [0, 11]] = np.where(r < 50, 1000, -1000)[:, :, None]
    bleed = np.zeros(data.shape, np.uint8)
    bleed[40:55, 50:65, 4:8] = 1
    data[bleed == 1] = 70
    ct = Volume(data, np.diag([1.0, 1.0, 5.0, 1.0]))
    (folder / "test").mkdir(parents=True)
    save_volume(ct, folder / "test" / "ct_001.nii.gz")
    save_mask(bleed, ct, folder / "test" / "mask_001.nii.gz")


def test_the_benchmark_runs_on_any_site_folder_and_writes_every_figure(tmp_path: Path):
    site = tmp_path / "site"
    _phantom_site(site)
    torch.manual_seed(0)
    model = tmp_path / "click.safetensors"
    conv = InputConvention(in_plane_mm=0.8, context_slices=1, click_sigma_mm=5.0)
    save_weights(model, build_network("unet25d-click", 4).state_dict(), WeightsMeta("unet25d-click", 4, input=conv))
    out = tmp_path / "out.json"
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench_correction.py"), "--data", str(site), "--model", str(model)]
        + ["--budget", "2", "--json", str(out)],
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "GFLOP/s" in run.stdout and "click latency" in run.stdout
    result = json.loads(out.read_text())
    (case,) = result["cases"]
    assert case["case"].endswith("/001") and abs(case["manual_ml"] - 15 * 15 * 4 * 5 / 1000) < 1e-6
    for cond in ("empty/tools", "empty/clicks", "auto/tools", "auto/clicks"):
        c = case[cond]
        assert 0 <= c["clicks"] <= 2 and set(c) >= {"reached", "dice_after_1", "dice_after_3", "dice_after_5"}
        assert c["reached"] or c["clicks"] == 2  # never reached counts the whole budget
    assert result["summary"]["latency_n"] >= 1 and result["summary"]["latency_p95_s"] > 0
