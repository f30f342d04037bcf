"""A two-site ring on the real CT-ICH data, each site in its own process, through
the hematoma trainer (the product recipe: the network that takes clicks, trained
with simulated clicks); then every file on the server is inspected for anything
but weights, optimizer state and scalar metrics, and the ring's best weights are
fetched and used for prediction."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.model.architectures import build_network

from privacy_scan import forbidden_terms, scan_server_dir
from ring_helpers import ring_turn_args

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--set", "patches_per_volume=4", "--set", "patch_size=24", "--set", "threads=1"]


def _cli(*args, **kw) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT), HOME=str(kw.pop("home")))
    return subprocess.Popen(
        [sys.executable, "-m", "core", *args],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _small_site(src: Path, dst: Path, n: int) -> Path:
    """A site folder with the first n training cases (links, never copies of data)."""
    (dst / "train").mkdir(parents=True)
    for ct in sorted((src / "train").glob("ct_*.nii.gz"))[:n]:
        for f in (ct, ct.with_name(ct.name.replace("ct_", "mask_"))):
            (dst / "train" / f.name).symlink_to(f)
    return dst


@pytest.mark.slow
def test_two_site_ring_on_real_data_leaks_nothing(site_a, site_b, tmp_path):
    ring = tmp_path / "server"
    a = _small_site(site_a, tmp_path / "site-a", 2)
    b = _small_site(site_b, tmp_path / "site-b", 2)
    signers = tmp_path / "signers.txt"  # each site's public signing key, as a coordinator collects them
    for s in "ab":
        key = _cli("ring", "key", "--site", s, home=tmp_path / f"home-{s}")
        out = key.communicate(timeout=120)[0]  # the key line, and a "# fingerprint" comment (ignored)
        assert key.returncode == 0, out
        signers.write_text((signers.read_text() if signers.exists() else "") + out)
    init = subprocess.run(
        [
            sys.executable,
            "-m",
            "core",
            "ring",
            "init",
            "--server",
            str(ring),
            "--sites",
            "a,b",
            "--max-turns",
            "4",
            "--seed",
            "3",
            "--signers",
            str(signers),
        ],
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert init.returncode == 0, init.stderr
    procs = [  # each site trusts the coordinator's signers file at first contact
        _cli(
            *ring_turn_args(str(ring), s, d, "--wait", "--poll", "0.5", "--trust-signers", str(signers), *TINY),
            home=tmp_path / f"home-{s}",
        )
        for s, d in (("a", a), ("b", b))
    ]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    for p, out in zip(procs, outs):
        assert p.returncode == 0, out
    manifest = json.loads((ring / "manifest.json").read_text())
    assert manifest["status"] != "running" and manifest["turns_done"] == 4
    turns = [h for h in manifest["history"] if h.get("event") == "turn"]
    assert [h["site"] for h in turns] == ["a", "b", "a", "b"]
    assert all(np.isfinite(h["metrics"]["val_loss"]) and h["n_examples"] > 0 for h in turns)
    # the product recipe is the default preset: the network that also takes clicks
    assert manifest["model_id"] == "unet25d-click-ds4-0.8mm-clicks5mm"

    shapes = {k: tuple(v.shape) for k, v in build_network("unet25d-click", 4).state_dict().items()}
    terms = forbidden_terms(site_a) | forbidden_terms(site_b) | forbidden_terms(a) | forbidden_terms(b)
    assert scan_server_dir(ring, terms, shapes) == []
    audit = subprocess.run(
        [sys.executable, "-m", "core", "ring", "audit", "--server", str(ring)],
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert audit.returncode == 0 and "0 item(s) flagged" in audit.stdout, audit.stdout[-3000:] + audit.stderr
    # the audit logs stayed on each site's machine, not on the server
    assert all((tmp_path / f"home-{s}").rglob("ring-audit-*.jsonl") for s in "ab")

    # the ring's best weights work as a model for prediction
    model = tmp_path / "msl.safetensors"
    r = subprocess.run(
        [sys.executable, "-m", "core", "ring", "fetch", "--server", str(ring), "--out", str(model)]
        + ["--signers", str(signers)],
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    out = tmp_path / "pred"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "core",
            "predict",
            str(site_a / "test" / "ct_067.nii.gz"),
            "-o",
            str(out),
            "--model",
            str(model),
        ],
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    import nibabel as nib

    pred = nib.load(str(next(out.glob("*.nii.gz"))))
    assert pred.get_data_dtype() == np.uint8 and pred.shape == nib.load(str(site_a / "test" / "ct_067.nii.gz")).shape
