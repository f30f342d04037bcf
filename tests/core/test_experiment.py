"""``hemarelay experiment`` end to end on a tiny configuration of the real data:
2 training cases, 1 test case and 1 normal scan per site, 4 patches of 24x24
per volume, at most 2 epochs per site (4 ring turns). The outputs are checked
for their content: Table 2 against the per-case scores, the per-case scores
against ``evaluate_site``, the MSL model against the ring, the figures, the
report, and ``--resume`` on a finished experiment."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from core.errors import ConfigError
from core.experiment import ExperimentPlan, SiteSpec, parse_site_arg, ring_budget
from core.training.config import load_config

ROOT = Path(__file__).resolve().parents[2]
TINY = [
    "--set",
    "patches_per_volume=4",
    "--set",
    "patch_size=24",
    "--set",
    "max_epochs=2",
    "--set",
    "patience=1",
    "--set",
    "threads=1",
]


def _link_site(src: Path, dst: Path, n_train: int = 2) -> Path:
    """A site folder of symbolic links: n_train train cases, 1 test case, 1 normal scan."""
    for split, n in (("train", n_train), ("test", 1), ("normal", 1)):
        (dst / split).mkdir(parents=True)
        for ct in sorted((src / split).glob("ct_*.nii.gz"))[:n]:
            for f in (ct, ct.with_name(ct.name.replace("ct_", "mask_"))):
                if f.exists():
                    (dst / split / f.name).symlink_to(f)
    return dst


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "core", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        timeout=600,
    )


def _hashes(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and "ring" not in p.parts
    }


@pytest.fixture(scope="module")
def experiment(site_a, site_b, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("experiment")
    a, b = _link_site(site_a, tmp / "site-a"), _link_site(site_b, tmp / "site-b")
    out = tmp / "out"
    r = _cli("experiment", "--site", f"a={a}", "--site", f"b={b}", "--out", str(out), *TINY)
    assert r.returncode == 0, r.stdout + r.stderr
    return {"out": out, "a": a, "b": b, "stdout": r.stdout, "stderr": r.stderr}


@pytest.mark.slow
def test_table2_matches_the_per_case_scores(experiment):
    out = experiment["out"]
    rows = list(csv.DictReader((out / "table2.csv").open()))
    assert [r["model"] for r in rows] == ["SSL-A", "SSL-B", "MSL"]
    stats = json.loads((out / "stats.json").read_text())
    for r in rows:
        for site in "ab":
            d = float(r[f"dice_site_{site}"])
            assert 0.0 <= d <= 1.0
            cases = stats["models"][r["model"]][site]["cases"]
            assert len(cases) == 1
            assert d == pytest.approx(np.mean([c["dice"] for c in cases]), abs=1e-4)
            # one test volume: Pearson r is undefined and must say so, not invent a number
            assert r[f"r_site_{site}"] == ""
            assert "at least 3" in stats["models"][r["model"]][site]["pearson_note"]
        assert float(r["dice_average"]) == pytest.approx(
            (float(r["dice_site_a"]) + float(r["dice_site_b"])) / 2, abs=1e-4
        )
    md = (out / "table2.md").read_text()
    for r in rows:
        assert f"| {r['model']} | {float(r['dice_site_a']):.3f} / n/a |" in md
    for site in "ab":
        for ssl in ("SSL-A", "SSL-B"):
            t = stats["wilcoxon"][site][f"MSL vs {ssl}"]
            assert t["n"] == 1 and t["note"]  # n too small: the note says so
    assert stats["plan"]["ring"] == {
        "patience_turns": 2,
        "max_turns": 4,
        "epochs_per_turn": 1,
        "order": "fixed",
        "convergence": "global",
        "seed": 0,
        "min_delta": 1e-4,
    }
    assert all(v > 0 for v in stats["timings_s"].values())
    assert "Table 2" in experiment["stdout"] and "step 3 of 5: train-MSL" in experiment["stderr"]


@pytest.mark.slow
def test_scores_agree_with_the_evaluate_function(experiment):
    from core.evaluation.inference import Segmenter, evaluate_site
    from core.progress import run_to_end

    out = experiment["out"]
    stats = json.loads((out / "stats.json").read_text())
    ev = run_to_end(evaluate_site(experiment["a"], Segmenter.from_file(out / "models/SSL-B/model.safetensors")))
    mine = stats["models"]["SSL-B"]["a"]
    assert [c.case for c in ev.cases] == [c["case"] for c in mine["cases"]]
    for c, m in zip(ev.cases, mine["cases"]):
        assert c.dice == pytest.approx(m["dice"], abs=1e-12)
        assert c.manual_ml == pytest.approx(m["manual_ml"]) and c.auto_ml == pytest.approx(m["auto_ml"])
        assert m["manual_ml"] > 0
    assert [c.auto_ml for c in ev.normal] == pytest.approx([c["auto_ml"] for c in mine["normal"]["cases"]])
    assert ev.model_sha256 == mine["model_sha256"] == stats["model_files"]["SSL-B"]["sha256"]


@pytest.mark.slow
def test_models_come_from_where_they_should(experiment):
    from core.model.weights import load_weights

    out = experiment["out"]
    msl = load_weights(out / "models/MSL/model.safetensors")
    assert msl.meta.training["source"] == "cyclic weight transfer ring" and msl.meta.preset == "ring"
    manifest = json.loads((out / "ring/server/manifest.json").read_text())
    turns = [h for h in manifest["history"] if h.get("event") == "turn"]
    assert 2 <= len(turns) <= 4 and [t["site"] for t in turns] == ["a", "b", "a", "b"][: len(turns)]
    # the fetched weights are the ring's best: the same tensors as the best file on the server
    from core.ring.codec import decode_weights, sha256_hex

    best = manifest["best"]["weights"]
    ring_bytes = (out / "ring/server" / best["file"]).read_bytes()
    assert sha256_hex(ring_bytes) == best["sha256"]
    ring_best = decode_weights(ring_bytes, best["file"])
    assert ring_best.keys() == msl.state_dict.keys()
    assert all(torch.equal(ring_best[k], msl.state_dict[k]) for k in ring_best)
    assert msl.meta.metrics["val_loss"] == pytest.approx(manifest["best"]["val_loss"])
    ssl = {m: load_weights(out / f"models/{m}/model.safetensors") for m in ("SSL-A", "SSL-B")}
    for w in ssl.values():
        assert w.meta.training["config"]["patch_size"] == 24 and w.meta.training["epochs"] <= 2
    assert len({w.meta.sha256 for w in (msl, *ssl.values())}) == 3
    # each site trained in its own process, with its own log
    assert all((out / f"ring/site-{s}.log").read_text().strip() for s in "ab")


@pytest.mark.slow
def test_figures_and_report(experiment):
    import matplotlib.image as mpimg

    out = experiment["out"]
    for name in ("fig_dice_site_a.png", "fig_dice_site_b.png", "fig_examples.png"):
        data = (out / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        img = mpimg.imread(out / name)
        assert img.shape[0] > 200 and img.shape[1] > 300 and float(img[..., :3].std()) > 0.05
    html = (out / "report.html").read_text()
    rows = list(csv.DictReader((out / "table2.csv").open()))
    for r in rows:
        assert f"<th>{r['model']}</th><td>{float(r['dice_site_a']):.3f} / n/a</td>" in html
    assert html.count("data:image/png;base64,") == 3 and "MSL vs SSL-A" in html


@pytest.mark.slow
def test_resume_of_a_finished_experiment_changes_nothing(experiment):
    out, a, b = experiment["out"], experiment["a"], experiment["b"]
    before = _hashes(out)
    t0 = time.monotonic()
    r = _cli("experiment", "--site", f"a={a}", "--site", f"b={b}", "--out", str(out), "--resume", *TINY)
    assert r.returncode == 0, r.stderr
    assert time.monotonic() - t0 < 30
    assert "Skipped finished steps: train-SSL-A, train-SSL-B, train-MSL, evaluate, report" in r.stdout
    assert _hashes(out) == before
    # the same folder without --resume, or with other settings, is refused
    r = _cli("experiment", "--site", f"a={a}", "--site", f"b={b}", "--out", str(out), *TINY)
    assert r.returncode == 2 and "--resume" in r.stderr
    r = _cli(
        "experiment",
        "--site",
        f"a={a}",
        "--site",
        f"b={b}",
        "--out",
        str(out),
        "--resume",
        *TINY,
        "--set",
        "patch_size=32",
    )
    assert r.returncode == 2 and "patch_size" in r.stderr


def test_ring_budget_gives_each_site_its_ssl_epochs():
    config = load_config("cpu-small", None, ["patience=3", "max_epochs=7"])
    assert ring_budget(config, 2) == (6, 14)
    assert ring_budget(config, 3) == (9, 21)


def test_site_arguments(tmp_path):
    assert parse_site_arg(f"a={tmp_path}") == SiteSpec("a", tmp_path)
    for bad in ("a", f"=({tmp_path})", f"a b={tmp_path}"):
        with pytest.raises(ConfigError):
            parse_site_arg(bad)
    with pytest.raises(Exception, match="not found"):
        parse_site_arg(f"a={tmp_path / 'missing'}")
    config = load_config("cpu-small")
    with pytest.raises(ConfigError, match="at least two"):
        ExperimentPlan((SiteSpec("a", tmp_path),), tmp_path / "o", config)
    with pytest.raises(ConfigError, match="differ"):
        ExperimentPlan((SiteSpec("a", tmp_path), SiteSpec("A", tmp_path)), tmp_path / "o", config)


def test_experiment_cpu_preset_loads_with_a_ring_budget():
    config = load_config("experiment-cpu")
    assert config.preset == "experiment-cpu" and config.patch_size >= 33  # the network's receptive field
    assert ring_budget(config, 2) == (2 * config.patience, 2 * config.max_epochs)
