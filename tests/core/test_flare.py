"""The ring's turn as an NVIDIA FLARE cyclic job (core/flare, ``hemarelay flare``).

Fast checks of the job folder, the server's result checks, the site-data rule,
the privacy scanner and fetch; then three sites on real CT-ICH cases in
NVFlare's simulator: cyclic order, the paper's stopping rule bookkeeping, a
prediction with the published model and a scan of the simulated server."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("nvflare", reason="the optional extra: pip install -e '.[flare]' (./test.sh installs it)")

from nvflare.app_common.abstract.fl_model import FLModel

from core.cases.worklist import CaseStatus, scan_folder
from core.errors import ConfigError, InputError
from core.flare.controller import ResultRefused, check_site_result
from core.flare.result import BEST, RECORD, RESULT_DIR, fetch_model
from core.flare.sites import DATA_ENV, encode_site_data, site_data_folder
from core.model.architectures import build_network

from privacy_scan import forbidden_terms, scan_server_workspace

ROOT = Path(__file__).resolve().parents[2]
# The paper's small network: each site trains on one approved case here, and the product
# recipe (the default preset) holds out whole cases for validation, which needs two.
TINY = ["--preset", "cpu-small", "--set", "patches_per_volume=4", "--set", "patch_size=24", "--set", "threads=1"]


def _cli(*args: str) -> subprocess.CompletedProcess:
    """``hemarelay ARGS`` in this process (the simulator is a process of its own
    anyway; sparing the interpreter start keeps the real-data test short)."""
    import contextlib
    import io

    from core.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main(list(args))
        except SystemExit as exc:  # argparse errors
            rc = exc.code if isinstance(exc.code, int) else 2
    return subprocess.CompletedProcess(["hemarelay", *args], rc, out.getvalue(), err.getvalue())


def _shapes() -> dict[str, tuple]:
    return {k: tuple(v.shape) for k, v in build_network("inception", 4).state_dict().items()}


# ------------------------------------------------------------------ fast checks
def test_site_data_folder_from_the_environment(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    assert site_data_folder("x", {DATA_ENV: str(a)}) == a  # one site: the folder itself
    mapping = encode_site_data({"a": a, "b": b})
    assert site_data_folder("b", {DATA_ENV: mapping}) == b.resolve()
    with pytest.raises(ConfigError, match="names no folder for this site"):
        site_data_folder("c", {DATA_ENV: mapping})
    with pytest.raises(ConfigError, match=DATA_ENV):
        site_data_folder("a", {})


def test_server_accepts_weights_and_val_loss_only():
    w = {"conv.weight": np.zeros((2, 3), np.float32)}
    shapes = {"conv.weight": (2, 3)}
    weights, val = check_site_result(FLModel(params=w, metrics={"val_loss": 0.5}), shapes)
    assert val == 0.5 and list(weights) == ["conv.weight"]
    bad = [
        (FLModel(params=w, metrics={"val_loss": 0.5, "n_cases": 3}), "only val_loss"),
        (FLModel(params=w, metrics={"val_loss": math.nan}), "finite"),
        (FLModel(params={**w, "extra": np.zeros(2)}, metrics={"val_loss": 0.5}), "do not match"),
        (
            FLModel(params={"conv.weight": np.array(["ct_049"] * 6).reshape(2, 3)}, metrics={"val_loss": 0.5}),
            "not a numeric",
        ),
        (FLModel(params=w, metrics={"val_loss": 0.5}, meta={"cases": ["049", "050"]}), "not NVFlare.s own"),
        (FLModel(params={}, metrics={"val_loss": 0.5}), "no weights"),
    ]
    for model, why in bad:
        with pytest.raises(ResultRefused, match=why):
            check_site_result(model, shapes)


def test_job_folder_names_no_path_and_states_every_setting(tmp_path):
    r = _cli(
        "flare",
        "job",
        "--sites",
        "a,b,c",
        "--out",
        str(tmp_path / "jobs"),
        "--rounds",
        "3",
        "--order",
        "random",
        "--patience",
        "4",
        *TINY,
    )
    assert r.returncode == 0, r.stderr
    job = tmp_path / "jobs" / "hemarelay-cyclic"
    files = sorted(p.relative_to(job).as_posix() for p in job.rglob("*") if p.is_file())
    assert files == [
        "app/config/config_fed_client.json",
        "app/config/config_fed_server.json",
        "app/custom/client_script.py",
        "meta.json",
    ]
    server = json.loads((job / "app/config/config_fed_server.json").read_text())["workflows"][0]
    assert server["path"] == "core.flare.controller.HematomaCyclic"
    assert server["args"] | {} == {
        "sites": ["a", "b", "c"],
        "model_id": "inception-ds4",
        "job_name": "hemarelay-cyclic",
        "max_rounds": 3,
        "patience": 4,
        "min_delta": 1e-4,
        "order": "shuffle",  # the one spelling (random is accepted as a word for it)
        "seed": 0,
        "epochs_per_turn": 1,
        "turn_timeout": 0,
    }
    client = json.loads((job / "app/config/config_fed_client.json").read_text())["executors"][0]["executor"]
    assert client["args"]["task_script_path"] == "client_script.py"
    assert client["args"]["task_script_args"] == " ".join(TINY)  # preset and overrides, as given
    meta = json.loads((job / "meta.json").read_text())
    assert meta["min_clients"] == 3 and meta["mandatory_clients"] == ["a", "b", "c"]
    for f in job.rglob("*"):
        if f.is_file():
            assert str(ROOT) not in f.read_text() and "/tmp" not in f.read_text(), f
    # the ring's rules for settings apply before NVFlare sees anything
    r = _cli("flare", "job", "--sites", "a", "--out", str(tmp_path / "j2"))
    assert r.returncode == 2 and "at least two sites" in r.stderr
    r = _cli("flare", "job", "--sites", "a,b", "--out", str(tmp_path / "j3"), "--set", "ds=3")
    assert r.returncode == 2 and "ds" in r.stderr


def _fake_server(tmp_path: Path) -> Path:
    """A server folder as the controller leaves it, with a real model file."""
    import torch

    from core.flare.result import FlareRecord, FlareTurn, PublishedWeights, provenance
    from core.model.weights import read_meta
    from core.training.ring_turn import save_ring_weights_as_model

    root = tmp_path / "server"
    out = root / "simulate_job" / RESULT_DIR
    rec = FlareRecord("j", "simulate_job", "inception-ds4", ["a", "b"], "fixed", 0, 2, 3, 1e-4, 1, status="max_rounds")
    turn = FlareTurn(0, 0, "a", 0.7, True, 0, 1.0)
    rec.turns.append(turn)
    label, source = provenance(rec, turn)
    net = build_network("inception", 4)
    save_ring_weights_as_model(
        {k: torch.as_tensor(v) for k, v in net.state_dict().items()},
        "inception-ds4",
        out / BEST,
        version=label,
        source=source,
    )
    rec.best = rec.latest = PublishedWeights(BEST, 0, 0, "a", 0.7, read_meta(out / BEST).sha256)
    rec.write(out)
    (root / "log.txt").write_text("2026-11-30 10:09:15,049 - ServerRunner - INFO - turn done\n")
    return root


def test_scanner_finds_what_must_not_reach_the_server(tmp_path):
    site = tmp_path / "site" / "train"
    site.mkdir(parents=True)
    (site / "ct_049.nii.gz").write_bytes(b"x")
    terms = forbidden_terms(site.parent)
    root = _fake_server(tmp_path)
    assert scan_server_workspace(root, terms, _shapes()) == []  # "049" in a log timestamp is not a leak
    (root / "log.txt").write_text(f"loading {site / 'ct_049.nii.gz'}\n")
    rec_path = root / "simulate_job" / RESULT_DIR / RECORD
    rec = json.loads(rec_path.read_text())
    rec["turns"][0]["site"] = "049"
    rec_path.write_text(json.dumps(rec))
    (root / "simulate_job" / "patches.npy").write_bytes(b"\x93NUMPY")
    found = {
        (f.file, f.problem.split(" contains")[0].split(" looks")[0])
        for f in scan_server_workspace(root, terms, _shapes())
    }
    assert ("log.txt", "its text") in found
    assert (f"simulate_job/{RESULT_DIR}/{RECORD}", "$.turns[0].site") in found
    assert any(f == "simulate_job/patches.npy" for f, _ in found)


def test_fetch_checks_the_record(tmp_path):
    root = _fake_server(tmp_path)
    r = _cli("flare", "fetch", str(tmp_path), "-o", str(tmp_path / "m.safetensors"))
    assert r.returncode == 0, r.stderr
    from core.model.weights import read_meta

    meta = read_meta(tmp_path / "m.safetensors")
    assert meta.version.startswith("NVFlare job j (simulate_job) round 1 turn 1 site a")
    assert meta.training["nvflare_job_id"] == "simulate_job" and meta.training["round"] == 1
    # weights changed after the job wrote them are refused
    import torch

    from core.model.weights import load_weights, save_weights

    best = root / "simulate_job" / RESULT_DIR / BEST
    loaded = load_weights(best)
    sd = {k: v + 1 if v.is_floating_point() else v for k, v in loaded.state_dict.items()}
    save_weights(best, {k: torch.as_tensor(v) for k, v in sd.items()}, loaded.meta)
    with pytest.raises(InputError, match="sha256 differs"):
        fetch_model(tmp_path, tmp_path / "m2.safetensors")
    assert not (tmp_path / "m2.safetensors").exists()


# ------------------------------------------------------------ the real thing
def _approved_site(src: Path, dst: Path, approved: str, other: str) -> Path:
    """A site folder with two real training cases (linked, never copied): case
    ``approved`` approved for training, case ``other`` not, so never trained on."""
    train = dst / "train"
    train.mkdir(parents=True)
    for cid in (approved, other):
        for f in (f"ct_{cid}.nii.gz", f"mask_{cid}.nii.gz"):
            (train / f).symlink_to(src / "train" / f)
    wl = scan_folder(dst)
    wl.set_status(wl.find(f"train/{approved}").label, CaseStatus.APPROVED, unopened_ok=True)
    return dst


@pytest.mark.slow
def test_three_sites_in_nvflare_simulator_on_real_data(site_a, site_b, tmp_path):
    from core.site.training import approved_cases

    # the smallest training CTs of the data (the test's time goes to brain extraction and patches)
    sites = {
        "a": _approved_site(site_a, tmp_path / "data-a", "066", "049"),
        "b": _approved_site(site_b, tmp_path / "data-b", "085", "076"),
        "c": _approved_site(site_b, tmp_path / "data-c", "090", "080"),
    }
    assert all(len(approved_cases(d)) == 1 for d in sites.values())
    ws, model = tmp_path / "ws", tmp_path / "flare.safetensors"
    r = _cli(
        "flare",
        "simulate",
        *[f"--site={s}={d}" for s, d in sites.items()],
        "--workspace",
        str(ws),
        "--rounds",
        "2",
        "--patience",
        "5",
        "-o",
        str(model),
        *TINY,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "The job max_rounds" in r.stdout

    record = json.loads(next(ws.rglob(f"{RESULT_DIR}/{RECORD}")).read_text())
    assert [t["site"] for t in record["turns"]] == ["a", "b", "c", "a", "b", "c"]  # cyclic, fixed order
    assert [t["round"] for t in record["turns"]] == [0, 0, 0, 1, 1, 1]
    assert all(np.isfinite(t["val_loss"]) for t in record["turns"])
    best = min(record["turns"], key=lambda t: t["val_loss"])
    assert record["best"]["turn"] == best["turn"] and record["best"]["val_loss"] == best["val_loss"]
    # the clients trained on the approved case only (the unapproved one is never read into patches:
    # each client logs its number of approved cases)
    logs = "".join((ws / s / "log.txt").read_text() for s in sites)
    assert logs.count("1 approved case(s)") == 3

    # nothing but weights and scalars reached the simulated server
    terms = set().union(*(forbidden_terms(d) for d in sites.values()))
    terms |= forbidden_terms(site_a / "train") | forbidden_terms(site_b / "train")
    assert scan_server_workspace(ws / "server", terms, _shapes()) == []

    # the published model predicts a real case through `hemarelay predict`, naming the job and round
    from core.model.weights import read_meta

    meta = read_meta(model)
    assert f"round {best['round'] + 1} turn {best['turn'] + 1} site {best['site']}" in meta.version
    assert meta.training["source"] == "NVFlare cyclic job"
    out = tmp_path / "pred"
    ct = site_a / "test" / "ct_067.nii.gz"
    r = _cli("predict", str(ct), "-o", str(out), "--model", str(model))
    assert r.returncode == 0, r.stdout + r.stderr
    import nibabel as nib

    pred = nib.load(str(out / "pred_067.nii.gz"))
    assert pred.get_data_dtype() == np.uint8 and pred.shape == nib.load(str(ct)).shape
    prov = json.loads((out / "pred_067.json").read_text())
    assert "NVFlare job hemarelay-cyclic" in json.dumps(prov)


class _FakeEngine:
    def __init__(self, names):
        self.names = names

    def get_clients(self):
        from types import SimpleNamespace

        return [SimpleNamespace(name=n) for n in self.names]


def _controller(tmp_path, losses, **kw):
    """The server workflow with NVFlare's messaging replaced by sites that return
    the network's weights and the given validation losses, in turn."""
    from types import SimpleNamespace

    from core.flare.controller import HematomaCyclic

    weights = {k: v.numpy() for k, v in build_network("inception", 4).state_dict().items()}
    sent = []

    class Ctl(HematomaCyclic):
        def send_model_and_wait(self, targets=None, data=None, **_):
            sent.append((targets[0], dict(data.meta), len(data.params)))
            val = losses[len(sent) - 1]
            return [
                FLModel(
                    params=weights,
                    metrics={"val_loss": val},
                    meta={"initial_metrics": {"val_loss": val}, "props": dict(data.meta), "client_name": targets[0]},
                )
            ]

        def get_run_dir(self):
            return str(tmp_path / "run")

        def info(self, msg):
            pass

        def panic(self, reason):
            raise AssertionError(reason)

    ctl = Ctl(job_name="j", model_id="inception-ds4", **kw)
    ctl.engine = _FakeEngine(kw["sites"])
    ctl.fl_ctx = SimpleNamespace(get_job_id=lambda: "job-1")
    ctl.abort_signal = SimpleNamespace(triggered=False)
    ctl.run()
    return ctl, sent


def test_controller_stops_on_global_patience_and_publishes_the_best(tmp_path):
    # patience 2: turn 3 is the best; turns 4 and 5 do not improve by more than min_delta
    losses = [0.9, 0.8, 0.5, 0.50005, 0.6, 0.1]
    ctl, sent = _controller(tmp_path, losses, sites=["a", "b", "c"], max_rounds=5, patience=2, min_delta=1e-4)
    assert [s for s, _, _ in sent] == ["a", "b", "c", "a", "b"]
    assert sent[0][2] == 0 and all(n > 0 for _, _, n in sent[1:])  # the first site initialises
    assert [m["hemarelay_turn"] for _, m, _ in sent] == [0, 1, 2, 3, 4]
    rec = ctl.record
    assert rec.status == "converged" and "2 turns in a row" in rec.explanation
    assert rec.best.turn == 2 and rec.best.site == "c" and rec.latest.turn == 4
    got = fetch_model(tmp_path / "run", tmp_path / "best.safetensors")
    assert got.weights.val_loss == 0.5
    from core.model.weights import read_meta

    assert "round 1 turn 3 site c" in read_meta(tmp_path / "best.safetensors").version


def test_controller_random_order_is_the_rings_shuffle(tmp_path):
    from dataclasses import replace

    from core.ring.manifest import new_manifest

    ctl, sent = _controller(
        tmp_path,
        [1.0 - i / 100 for i in range(9)],
        sites=["a", "b", "c"],
        max_rounds=3,
        patience=50,
        order="random",
        seed=7,
    )
    order = [s for s, _, _ in sent]
    ring = new_manifest(ctl.ring)  # an SSH ring with the same settings takes turns in this order
    assert order == [replace(ring, turns_done=t).next_site for t in range(9)]
    assert ctl.ring.order == "shuffle" and order != ["a", "b", "c"] * 3
    assert all(sorted(order[i : i + 3]) == ["a", "b", "c"] for i in (0, 3, 6))
    assert all(x != y for x, y in zip(order, order[1:]))  # never the same site twice in a row
    assert ctl.record.status == "max_rounds" and len(ctl.record.turns) == 9


def test_a_sites_own_error_explains_a_failed_simulation(tmp_path):
    from core.flare.simulate import site_errors

    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "error_log.txt").write_text(
        'Traceback (most recent call last):\n  File "client.py", line 38\n'
        "core.errors.InputError: NVFlare site b: no case in its data folder is approved for training.\n"
    )
    assert site_errors(tmp_path, {"a": tmp_path, "b": tmp_path}) == [
        "NVFlare site b: no case in its data folder is approved for training."
    ]


def test_missing_extra_is_a_user_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "nvflare", None)  # as if the extra were not installed
    r = _cli("flare", "job", "--sites", "a,b", "--out", "unused")
    assert r.returncode == 2 and "pip install -e '.[flare]'" in r.stderr
