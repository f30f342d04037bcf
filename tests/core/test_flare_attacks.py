"""Issue 23's NVFlare rows: the cyclic job held to the SSH ring's standard, tried as a
hostile NVFlare server (a job asking for endless training, a crafted result record)
or a hostile site (a first result that is not the network's weights)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

pytest.importorskip("nvflare", reason="the optional extra: pip install -e '.[flare]' (./test.sh installs it)")

import numpy as np
from nvflare.app_common.abstract.fl_model import FLModel

from core.cli import main as cli_main
from core.errors import InputError
from core.flare.result import BEST, RECORD, RESULT_DIR, fetch_model
from core.model.architectures import build_network
from core.ring.trainer import TurnResult


class _Recording:
    """A trainer that records what it was asked and returns the weights it got."""

    model_id = "inception-ds4"

    def __init__(self) -> None:
        self.inputs = []

    def train_turn(self, inp, token):
        from core.progress import Progress

        self.inputs.append(inp)
        yield Progress("Epoch 1", 1, 1)
        return TurnResult(inp.weights or {"w": __import__("torch").zeros(2)}, None, {"val_loss": 0.5}, 1)


def test_a_job_cannot_ask_a_site_for_endless_training(monkeypatch):
    from core.flare.client import take_turn
    from core.flare.controller import META_EPOCHS, META_SEED, META_TURN

    trainer = _Recording()
    take_turn(trainer, "a", {}, {META_EPOCHS: 10**9, META_SEED: 0, META_TURN: 0})
    assert trainer.inputs[-1].epochs == 20  # the site's default cap, as the SSH ring's
    monkeypatch.setenv("HEMARELAY_FLARE_MAX_EPOCHS", "3")
    take_turn(trainer, "a", {}, {META_EPOCHS: 10**9, META_SEED: 0, META_TURN: 1})
    assert trainer.inputs[-1].epochs == 3
    take_turn(trainer, "a", {}, {META_EPOCHS: "lots", META_SEED: 0, META_TURN: 2})
    assert trainer.inputs[-1].epochs == 1
    with pytest.raises(InputError, match="not a count"):
        take_turn(trainer, "a", {}, {META_EPOCHS: 1, META_SEED: "../x", META_TURN: 3})


def _run(tmp_path: Path, replies: list[FLModel]):
    """The server workflow against sites that answer ``replies`` in turn; returns why it stopped."""
    from core.flare.controller import HematomaCyclic

    answers = iter(replies)
    logged = []

    class Ctl(HematomaCyclic):
        def send_model_and_wait(self, targets=None, data=None, **_):
            return [next(answers)]

        def get_run_dir(self):
            return str(tmp_path / "run")

        def info(self, msg):
            logged.append(msg)

        def panic(self, reason):
            self.panicked = reason

    ctl = Ctl(sites=["a", "b"], model_id="inception-ds4", job_name="j", max_rounds=1)
    ctl.panicked = ""
    ctl.engine = SimpleNamespace(get_clients=lambda: [SimpleNamespace(name=n) for n in "ab"])
    ctl.fl_ctx = SimpleNamespace(get_job_id=lambda: "job-3")
    ctl.abort_signal = SimpleNamespace(triggered=False)
    ctl.run()
    return ctl.panicked, logged


def test_the_first_result_is_checked_against_the_network(tmp_path):
    weights = {k: v.numpy() for k, v in build_network("inception", 4).state_dict().items()}
    named = {**weights, "Doe_John_MRN_1234567": np.zeros((512, 512), np.float32)}
    panicked, logged = _run(tmp_path, [FLModel(params=named, metrics={"val_loss": 0.5})])
    assert "site a, turn 1: result refused" in panicked and "do not match the network" in panicked
    assert not any("Doe_John" in line for line in logged)  # never logged as received
    meta = {"Doe_John": 1, "client_name": "a"}
    panicked, _ = _run(tmp_path / "2", [FLModel(params=weights, metrics={"val_loss": 0.5}, meta=meta)])
    assert "not NVFlare's own bookkeeping" in panicked
    panicked, _ = _run(tmp_path / "3", [FLModel(params=weights, metrics={"val_loss": 0.5}, meta={"client_name": "b"})])
    assert "not NVFlare's own bookkeeping" in panicked  # a site naming another site


def test_a_job_stops_when_a_site_sends_more_than_weights(tmp_path):
    weights = {k: v.numpy() for k, v in build_network("inception", 4).state_dict().items()}
    replies = [
        FLModel(params=weights, metrics={"val_loss": 0.5}),
        FLModel(params=weights, metrics={"val_loss": 0.4, "n_patients": 12}),
    ]
    panicked, _ = _run(tmp_path, replies)
    assert "site b, turn 2: result refused" in panicked and "only val_loss" in panicked
    rec = json.loads((tmp_path / "run" / RESULT_DIR / RECORD).read_text())
    assert rec["status"] == "failed" and len(rec["turns"]) == 1 and rec["best"]["site"] == "a"


def _record(tmp_path: Path, raw: str | None = None, **changes) -> Path:
    """A job result folder with a real model file and a record (as the controller writes it)."""
    import torch

    from core.flare.result import FlareRecord, FlareTurn, PublishedWeights, provenance
    from core.model.weights import read_meta
    from core.training.ring_turn import save_ring_weights_as_model

    out = tmp_path / "server" / "job" / RESULT_DIR
    rec = FlareRecord("j", "job", "inception-ds4", ["a", "b"], "fixed", 0, 2, 3, 1e-4, 1, status="max_rounds")
    turn = FlareTurn(0, 0, "a", 0.7, True, 0, 1.0)
    rec.turns.append(turn)
    label, source = provenance(rec, turn)
    net = {k: torch.as_tensor(v) for k, v in build_network("inception", 4).state_dict().items()}
    save_ring_weights_as_model(net, "inception-ds4", out / BEST, version=label, source=source)
    rec.best = rec.latest = PublishedWeights(BEST, 0, 0, "a", 0.7, read_meta(out / BEST).sha256)
    rec.write(out)
    doc = json.loads((out / RECORD).read_text()) | changes
    (out / RECORD).write_text(json.dumps(doc) if raw is None else raw)
    return out / RECORD


def test_fetch_stays_in_the_results_folder(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "x.safetensors").write_bytes(b"someone else's file")
    path = _record(tmp_path)
    doc = json.loads(path.read_text())
    doc["best"]["file"] = "../../../outside/x.safetensors"
    path.write_text(json.dumps(doc))
    with pytest.raises(InputError, match="not a Hematoma Relay NVFlare record"):
        fetch_model(tmp_path / "server", tmp_path / "got.safetensors")
    assert not (tmp_path / "got.safetensors").exists()
    doc["best"]["file"] = BEST  # a link in its place is refused too
    path.write_text(json.dumps(doc))
    (path.parent / BEST).unlink()
    (path.parent / BEST).symlink_to(outside / "x.safetensors")
    with pytest.raises(InputError, match="not a plain file"):
        fetch_model(tmp_path / "server", tmp_path / "got.safetensors")


def test_flare_fetch_prints_safe_text_and_refuses_deep_json(tmp_path, capsys):
    _record(tmp_path, explanation="done\x1b]0;pwned\x07\x1b[2J\r\u202eevil")
    assert cli_main(["flare", "fetch", str(tmp_path / "server"), "-o", str(tmp_path / "m.safetensors")]) == 0
    out = capsys.readouterr().out
    assert "done" in out and not any(c in out for c in "\x1b\x07\r\u202e")
    (tmp_path / "deep").mkdir()
    nested = _record(tmp_path / "deep", raw="[" * 100_000 + "]" * 100_000)
    assert nested.read_text().startswith("[[[")
    rc = cli_main(["flare", "fetch", str(tmp_path / "deep" / "server"), "-o", str(tmp_path / "d.safetensors")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "not a Hematoma Relay NVFlare record" in err[0]
