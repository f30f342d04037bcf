"""The ring under attack, on a folder server: a hostile server or member with write
access to the ring folder tries to write outside it, delete elsewhere, slip in
weights (swap, roll back, fork), steer this site's training, or exhaust it.
Each test is one attack from issue 15; the SFTP ones are in test_ring_attacks_sftp.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from core.cli import main as cli_main
from core.progress import NEVER_CANCELLED, CancelToken, run_to_end
from core.ring import turn as T
from core.ring.codec import encode_weights, sha256_hex
from core.ring.errors import RingStateError, ServerFileTooLargeError, UnsafeServerPathError
from core.ring.lease import LEASE, Lease, read_lease
from core.ring.manifest import MANIFEST, MAX_MANIFEST_BYTES, RingConfig, parse_manifest, read_manifest
from core.ring.signing import RingTrustError, TrustStore, TurnSigner, sign_record, verify_chain
from core.ring.toy import ToyTrainer
from core.ring.trainer import TurnInput

from ring_helpers import Ring, StandIn

torch.set_num_threads(2)


# -- server-controlled names never become local paths ---------------------------


@pytest.mark.parametrize("field", ["ring_id", "site"])
def test_server_names_never_become_local_paths(tmp_path, monkeypatch, field):
    from core.site.setup import SiteSetup
    from core.site.sync import sync_once

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "a" / "b" / "state"))
    ring = Ring(tmp_path, sites=("a",), signed=False)
    ring.turn(StandIn(), "a", require_signed=False)
    doc = ring.manifest_doc()
    if field == "ring_id":  # models/<ring id[:16]> -> two folders above the state folder
        doc["ring_id"] = "../../../../evil"
    else:  # models/<id>/v000001-<site>-... -> outside the store
        for ref in (doc["weights"], doc["best"]["weights"]):
            ref["site"] = "x/../../../../../evil"
    ring.write_manifest(doc)
    setup = SiteSetup(site="a", server=str(ring.root), allow_unsigned=True)
    with pytest.raises(RingStateError, match="not a valid ring manifest"):
        run_to_end(sync_once(setup, store_root=tmp_path / "a" / "b" / "state" / "models"))
    assert not list(tmp_path.rglob("*evil*"))


def test_every_server_name_field_is_validated():
    from core.ring.manifest import new_manifest

    good = json.loads(new_manifest(RingConfig(sites=("a", "b"))).to_bytes())
    bad_values = {
        ("history", 0, "site"): "a\x1b[2J",
        ("per_site",): {"../x": good["per_site"]["a"]},
        ("model_id",): "../../m",
        ("holder",): {"site": "a/..", "token": "0" * 32, "turn": 0, "since": "x"},
    }
    for path, value in bad_values.items():
        doc = json.loads(json.dumps(good))
        target = doc
        for p in path[:-1]:
            target = target[p]
        target[path[-1]] = value
        with pytest.raises(RingStateError, match="not a valid ring manifest"):
            parse_manifest(json.dumps(doc).encode(), "manifest.json")


# -- links planted in the ring folder ----------------------------------------------


def test_prune_never_follows_a_linked_leases_folder(tmp_path, toy_trainers):
    ring = Ring(tmp_path)
    ring.turn(toy_trainers["a"], "a")
    victim = tmp_path / "victim"
    victim.mkdir()
    for i in range(30):
        (victim / f"broken-2026{i:04d}T000000Z-a-{i:06x}.json").write_text("precious")
    (ring.root / "leases").mkdir(exist_ok=True)
    (ring.root / "leases").rmdir()
    (ring.root / "leases").symlink_to(victim)  # a member replaces leases/ by a link
    out = ring.turn(toy_trainers["b"], "b")  # publishes, then prunes
    assert out.trained
    assert len(list(victim.iterdir())) == 30  # nothing deleted over there


def test_a_linked_weights_folder_or_file_is_refused(tmp_path, toy_trainers):
    ring = Ring(tmp_path)
    ring.turn(toy_trainers["a"], "a")
    m = read_manifest(ring.t)
    # 1. The weights file the manifest names becomes a link to a file of the server account.
    secret = tmp_path / "id_rsa"
    secret.write_bytes(b"PRIVATE KEY")
    target = ring.root / m.weights.file
    target.unlink()
    target.symlink_to(secret)
    with pytest.raises(UnsafeServerPathError, match="symbolic link"):
        ring.turn(toy_trainers["b"], "b")
    assert read_lease(ring.t) is None  # released for whoever repairs the ring
    # 2. The whole weights folder becomes a link: nothing is read, written or deleted there.
    elsewhere = tmp_path / "elsewhere"
    (ring.root / "weights").rename(elsewhere)
    (ring.root / "weights").symlink_to(elsewhere)
    before = sorted(p.name for p in elsewhere.iterdir())
    with pytest.raises(UnsafeServerPathError, match="symbolic link"):
        ring.turn(toy_trainers["b"], "b")
    assert sorted(p.name for p in elsewhere.iterdir()) == before


def test_prune_deletes_only_the_rings_own_names(tmp_path, toy_trainers):
    ring = Ring(tmp_path, keep_versions=1)
    (ring.root / "weights" / "README.txt").write_text("not ours")
    (ring.root / "leases").mkdir()
    (ring.root / "leases" / "notes.json").write_text("{}")
    for _ in range(2):
        ring.turn(toy_trainers["a"], "a")
        ring.turn(toy_trainers["b"], "b")
    assert (ring.root / "weights" / "README.txt").exists() and (ring.root / "leases" / "notes.json").exists()
    assert len(list((ring.root / "weights").glob("v*.safetensors"))) <= 3  # pruning still works


# -- substitution, rollback, fork ----------------------------------------------


def _swap_weights(ring: Ring, rewrite_record: bool) -> None:
    """The server replaces the latest weights by its own and fixes the hashes it controls."""
    doc = ring.manifest_doc()
    evil = encode_weights({k: torch.zeros(3) for k in ("w",)}, {"site": "a"})
    name = doc["weights"]["file"].replace(".safetensors", "").rsplit("-", 1)[0] + "-deadbeef.safetensors"
    (ring.root / name).write_bytes(evil)
    for ref in [doc["weights"], doc["best"]["weights"]]:
        ref.update(file=name, sha256=sha256_hex(evil), size=len(evil))
    if rewrite_record:
        rec = [h for h in doc["history"] if h.get("event") == "turn"][-1]
        rec.update(weights_file=name, weights_sha256=sha256_hex(evil))
    ring.write_manifest(doc)


@pytest.mark.parametrize("rewrite_record", [False, True])
def test_swapped_weights_and_hash_are_refused(tmp_path, toy_trainers, rewrite_record):
    ring = Ring(tmp_path)
    ring.turn(toy_trainers["a"], "a")
    _swap_weights(ring, rewrite_record)
    kind = "signature" if rewrite_record else "substitution"
    with pytest.raises(RingTrustError, match="refused") as err:
        ring.turn(toy_trainers["b"], "b")
    assert err.value.kind == kind and err.value.version == 1 and err.value.site == "a"
    assert read_manifest(ring.t).turns_done == 1 and read_lease(ring.t) is None


def test_repointed_best_is_refused(tmp_path, toy_trainers):
    ring = Ring(tmp_path)
    ring.turn(toy_trainers["a"], "a")
    ring.turn(toy_trainers["b"], "b")
    doc = ring.manifest_doc()
    first = [h for h in doc["history"] if h.get("event") == "turn"][0]
    doc["best"] = {
        "val_loss": -1.0,
        "weights": {**doc["weights"], "file": first["weights_file"], "sha256": first["weights_sha256"], "version": 1},
    }
    ring.write_manifest(doc)
    with pytest.raises(RingTrustError, match="'best' weights") as err:
        ring.turn(toy_trainers["a"], "a")
    assert err.value.kind == "substitution"


def test_rollback_and_fork_are_refused_and_named(tmp_path, toy_trainers, capsys):
    ring = Ring(tmp_path, reset_optimizer=True)  # the rolled-back state must stay trainable
    ring.turn(toy_trainers["a"], "a")
    after_1 = (ring.root / MANIFEST).read_bytes()
    ring.turn(toy_trainers["b"], "b")  # b's verified head: turn 2
    after_2 = (ring.root / MANIFEST).read_bytes()
    ring.turn(toy_trainers["a"], "a")
    # Rollback: the server shows b the ring as it was after turn 1.
    ring.write_manifest(after_1)
    with pytest.raises(RingTrustError, match="rolled back") as err:
        ring.turn(toy_trainers["b"], "b")
    assert err.value.kind == "rollback"
    # Fork: from that older state, a second copy of site b (another machine, no
    # record of b's head) trains turn 2 again; the server then shows b that branch.
    ring.turn(toy_trainers["b"], "b", trust="b-elsewhere")
    forked = read_manifest(ring.t)
    assert forked.turns_done == 2 and (ring.root / MANIFEST).read_bytes() != after_2
    v = verify_chain(forked, TrustStore(ring.trust("b")).get(forked.ring_id))
    assert v.problem is not None and v.problem.kind == "fork" and "forked" in str(v.problem) and not v.records
    with pytest.raises(RingTrustError, match="forked"):
        ring.turn(toy_trainers["b"], "b")  # b will not train on the other branch
    # The command line names it too.
    rc = cli_main(["ring", "status", "--server", str(ring.root), "--site", "b", "--trust-dir", str(ring.trust("b"))])
    assert rc == 0 and "REFUSED (fork)" in capsys.readouterr().out


def test_a_record_signed_by_the_wrong_site_or_a_swapped_key_is_refused(tmp_path, toy_trainers):
    ring = Ring(tmp_path)
    ring.turn(toy_trainers["a"], "a")
    ring.turn(toy_trainers["b"], "b")
    m = read_manifest(ring.t)
    # Site a (a member, with write access) re-signs turn 2, which was b's, with its own key.
    recs = list(m.turn_records)
    from dataclasses import replace

    forged = sign_record(ring.signers["a"], m, replace(recs[1], site="a"))
    history = tuple(forged if h is recs[1] else h for h in m.history)
    fresh = replace(TrustStore(ring.trust("b")).get(m.ring_id), head=None)  # a site seeing it for the first time
    v = verify_chain(replace(m, history=history), fresh)
    assert v.problem is not None and "took turn 2, site b's" in str(v.problem) and len(v.records) == 1
    # The server swaps b's public key for one it holds: the pin refuses it.
    mallory = TurnSigner.load_or_create("b", tmp_path / "keys" / "mallory.key")
    doc = ring.manifest_doc()
    doc["config"]["signers"]["b"] = mallory.public
    ring.write_manifest(doc)
    with pytest.raises(RingTrustError, match="signing key of site\\(s\\) b changed") as err:
        ring.turn(toy_trainers["a"], "a")
    assert err.value.kind == "key-change"
    # Or strips the keys altogether: a ring pinned as signed stays signed.
    doc["config"]["signers"] = {}
    ring.write_manifest(doc)
    with pytest.raises(RingTrustError, match="without signing keys"):
        run_to_end(T.take_turn(ring.t, toy_trainers["a"], ring.opts("a", require_signed=False), NEVER_CANCELLED))


def test_a_site_refuses_to_train_with_a_key_the_ring_does_not_list(tmp_path, toy_trainers):
    ring = Ring(tmp_path)
    other = TurnSigner.load_or_create("a", tmp_path / "keys" / "other.key")
    with pytest.raises(Exception, match="not the key the ring lists for site a"):
        ring.turn(toy_trainers["a"], "a", signer=other)
    assert read_manifest(ring.t).turns_done == 0


def test_unsigned_rings_are_refused_unless_allowed(tmp_path, toy_trainers):
    ring = Ring(tmp_path, signed=False)
    with pytest.raises(RingTrustError, match="no signing keys"):
        ring.turn(toy_trainers["a"], "a")
    assert ring.turn(toy_trainers["a"], "a", require_signed=False).trained


# -- the site decides ---------------------------------------------------------------


def test_server_optimizer_settings_and_epochs_are_only_suggestions(tmp_path, toy_trainers, toy_sites):
    toy = ToyTrainer(toy_sites["a"], lr=1e-2)
    first = run_to_end(toy.train_turn(TurnInput(None, None, 1, 0, 0, "a"), CancelToken()))
    state = first.optimizer_state
    assert state["state"]  # it carries moments
    for g in state["param_groups"]:  # what a hostile server would put in the optimizer file
        g.update(lr=10.0, betas=(0.0, 0.0), eps=1.0, weight_decay=100.0, maximize=True)
    out = run_to_end(toy.train_turn(TurnInput(first.weights, state, 1, 0, 1, "a"), CancelToken()))
    for g in out.optimizer_state["param_groups"]:
        assert (g["lr"], tuple(g["betas"]), g["eps"], g["weight_decay"], g["maximize"]) == (
            1e-2,
            (0.9, 0.999),
            1e-8,
            0,
            False,
        )
    ring = Ring(tmp_path, epochs_per_turn=50)
    out = ring.turn(toy_trainers["a"], "a", max_epochs_per_turn=2)
    assert out.record.epochs == 2  # the ring asked for 50
    out = ring.turn(toy_trainers["b"], "b", share_optimizer=False)
    m = read_manifest(ring.t)
    assert (
        m.optimizer is None
        and out.record.optimizer_sha256 == ""
        and not list((ring.root / "optimizer").glob("v000002-*"))
    )


def test_automatic_turns_are_capped_per_hour():
    from core.site.autoturn import AutoTurnBudget

    budget = AutoTurnBudget(per_hour=2)
    assert budget.allow(0.0)
    budget.record(0.0)
    budget.record(60.0)
    assert not budget.allow(120.0) and "2 automatic turns" in budget.why_not(120.0)
    assert budget.allow(3601.0)
    assert not AutoTurnBudget(per_hour=0).allow(0.0)


# -- limits -----------------------------------------------------------------------


def test_oversized_manifest_lease_and_weights_are_refused_before_reading(tmp_path, toy_trainers):
    ring = Ring(tmp_path)
    ring.turn(toy_trainers["a"], "a")
    m = read_manifest(ring.t)
    w = ring.root / m.weights.file
    w.write_bytes(w.read_bytes() + b"\0" * 4096)  # larger than the recorded size
    with pytest.raises(ServerFileTooLargeError, match="refused without reading"):
        ring.turn(toy_trainers["b"], "b")
    (ring.root / LEASE).write_bytes(b" " * (1 << 20))
    assert read_lease(ring.t).lease is None  # never parsed
    with open(ring.root / MANIFEST, "ab") as fh:
        fh.truncate(MAX_MANIFEST_BYTES + 1)
    with pytest.raises(ServerFileTooLargeError):
        read_manifest(ring.t)


def test_deeply_nested_json_and_mistyped_leases_are_refused_cleanly(tmp_path):
    with pytest.raises(RingStateError, match="not a valid ring manifest"):
        parse_manifest(b"[" * 200_000 + b"]" * 200_000, "manifest.json")
    with pytest.raises(RingStateError, match="not a valid ring manifest"):
        parse_manifest(
            b'{"format": "hemarelay-ring/1", "config": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "manifest.json"
        )
    good = json.loads(
        Lease(
            "a", "0" * 32, 0, "0" * 16, 1, "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z", "2026-01-01T00:10:00Z", 600.0
        ).to_bytes()
    )
    assert Lease.parse(json.dumps(good).encode()) is not None
    for k, v in {"turn": "0", "site": "../a", "pid": 1.5, "token": ["x"], "ttl_s": "600"}.items():
        assert Lease.parse(json.dumps({**good, k: v}).encode()) is None, k
    assert Lease.parse(b"[" * 100_000) is None


def test_cli_output_has_no_control_characters_from_the_server(tmp_path, toy_trainers, capsys):
    ring = Ring(tmp_path)
    ring.turn(toy_trainers["a"], "a")
    doc = ring.manifest_doc()
    doc["history"][0]["detail"] = "Ring created\x1b]0;pwned\x07\x1b[2J\r\u202eevil"
    ring.write_manifest(doc)
    assert cli_main(["ring", "status", "--server", str(ring.root)]) == 0
    out = capsys.readouterr().out
    assert "Ring created" in out and not any(c in out for c in "\x1b\x07\r\u202e")


def test_versions_kept_locally_are_bounded_and_the_one_in_use_stays():
    from core.site.versions import MAX_VERSIONS, ModelStore, ModelVersion, StoreIndex

    idx = StoreIndex(
        "0" * 32,
        [
            ModelVersion(v, "a", 0, v, f"{v:064x}", "", f"v{v}.safetensors", "m", "0" * 32)
            for v in range(1, MAX_VERSIONS + 6)
        ],
        chosen=2,
    )
    dropped = ModelStore(Path("/nonexistent"), "0" * 32)._bound(idx)
    kept = sorted(v.version for v in idx.versions)
    assert len(kept) == MAX_VERSIONS and 2 in kept and [v.version for v in dropped] == [1, 3, 4, 5, 6]
