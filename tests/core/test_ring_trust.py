"""Issue 23: the ring's trust, tried as a hostile server or a hostile member would.

Each test is one row of the issue's table (the NVFlare, image and GUI rows are in
test_flare_attacks.py, test_image_limits.py and tests/app/test_ring_gui.py): it
failed on main 56b063c and passes now.
"""

from __future__ import annotations

import io
import json
import multiprocessing
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import save as st_save

from core.cli import main as cli_main
from core.progress import NEVER_CANCELLED, run_to_end
from core.ring import turn as T
from core.ring.codec import OPTIMIZER_JSON_KEY, sha256_hex
from core.ring.errors import CorruptWeightsError, RingStateError, UnsafeServerPathError
from core.ring.keys import key_fingerprint
from core.ring.lease import new_lease, read_lease, try_acquire
from core.ring.manifest import RingConfig, parse_manifest, read_manifest
from core.ring.server import init_ring
from core.ring.server_audit import audit_server
from core.ring.signing import RingTrustError, TurnSigner, sign_record, verify_chain
from core.ring.toy import ToyTrainer, toy_network
from core.ring.transport_dir import DirectoryTransport
from core.ring.trust import Head, Pin, TrustStore
from core.turn_trainers import network_shapes

from ring_helpers import FAST, Ring, StandIn, ring_turn_args


def _signers_file(path: Path, keys: dict[str, TurnSigner]) -> Path:
    path.write_text("".join(f"{s} {k.public}\n" for s, k in keys.items()))
    return path


def _cli_turn(ring: Ring | Path, site: str, data: Path, tmp_path: Path, *extra: str) -> list[str]:
    root = ring.root if isinstance(ring, Ring) else ring
    return ring_turn_args(
        str(root),
        site,
        data,
        "--trainer",
        "toy",
        "--signing-key",
        str(tmp_path / "keys" / f"{site}.key"),
        "--audit-log",
        str(tmp_path / f"audit-{site}.jsonl"),
        "--poll",
        "0.02",
        *extra,
    )


def _records(doc: dict) -> list[dict]:
    return [h for h in doc["history"] if h.get("event") == "turn"]


# -- silent trust at first contact ------------------------------------------------


def test_first_contact_needs_a_person_or_the_coordinators_keys(tmp_path, toy_sites, capsys):
    keys = {s: TurnSigner.load_or_create(s, tmp_path / "keys" / f"{s}.key") for s in "ab"}
    coordinator = _signers_file(tmp_path / "signers.txt", keys)
    mallory = TurnSigner.load_or_create("a", tmp_path / "mallory.key")
    t = DirectoryTransport(tmp_path / "ring")  # the server lists mallory's key for site a ...
    init_ring(t, RingConfig(sites=("a", "b"), signers={"a": mallory.public, "b": keys["b"].public}))
    run_to_end(T.take_turn(t, ToyTrainer(toy_sites["a"]), T.SiteOptions("a", signer=mallory, **FAST), NEVER_CANCELLED))
    trust = ["--trust-dir", str(tmp_path / "trust-b")]  # ... and mallory's weights
    # No terminal and no signers file: refused, with every fingerprint shown; nothing pinned or trained.
    assert cli_main(_cli_turn(t.root, "b", toy_sites["b"], tmp_path, *trust)) == 2
    err = capsys.readouterr().err
    assert key_fingerprint(mallory.public) in err and "--trust-signers" in err
    assert read_manifest(t).turns_done == 1 and not list((tmp_path / "trust-b").glob("*.json"))
    # The coordinator's file names a's real key: refused, naming the site whose key differs.
    assert cli_main(_cli_turn(t.root, "b", toy_sites["b"], tmp_path, *trust, "--trust-signers", str(coordinator))) == 2
    assert "differ for site(s) a" in capsys.readouterr().err
    assert read_manifest(t).turns_done == 1 and not list((tmp_path / "trust-b").glob("*.json"))
    # In process (the desktop application's training child): no pin, no trust.
    opts = T.SiteOptions("b", signer=keys["b"], trust_dir=tmp_path / "trust-b", require_signed=True, **FAST)
    with pytest.raises(RingTrustError) as refused:
        run_to_end(T.take_turn(t, ToyTrainer(toy_sites["b"]), opts, NEVER_CANCELLED))
    assert refused.value.kind == "unpinned" and read_manifest(t).turns_done == 1


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_the_person_sees_the_fingerprints_and_confirms(tmp_path, toy_sites, capsys, monkeypatch):
    ring = Ring(tmp_path)
    answers, prompts = ["no", "yes"], []
    monkeypatch.setattr(sys, "stdin", _Terminal())
    monkeypatch.setattr("builtins.input", lambda prompt: prompts.append(prompt) or answers.pop(0))
    trust = ["--trust-dir", str(tmp_path / "trust-a-new")]  # site a on a machine that never met the ring
    assert cli_main(_cli_turn(ring, "a", toy_sites["a"], tmp_path, *trust)) == 2
    err = capsys.readouterr().err
    assert key_fingerprint(ring.signers["b"].public) in err and "not confirmed" in err
    assert read_manifest(ring.t).turns_done == 0
    assert cli_main(_cli_turn(ring, "a", toy_sites["a"], tmp_path, *trust)) == 0
    assert len(prompts) == 2 and read_manifest(ring.t).turns_done == 1
    pin = TrustStore(tmp_path / "trust-a-new").get(read_manifest(ring.t).ring_id)
    assert pin is not None and pin.signers == read_manifest(ring.t).config.signers


# -- fetch and status without an anchor ---------------------------------------------


def test_fetch_and_status_need_a_pin_and_say_so(tmp_path, toy_trainers, capsys):
    forged = Ring(tmp_path / "forged")  # forged end to end: every key is the attacker's
    forged.turn(toy_trainers["a"], "a")
    forged.turn(toy_trainers["b"], "b")
    real = {s: TurnSigner.load_or_create(s, tmp_path / "real" / f"{s}.key") for s in "ab"}
    coordinator = _signers_file(tmp_path / "signers.txt", real)
    out = tmp_path / "model.safetensors"
    server = ["--server", str(forged.root)]
    assert cli_main(["ring", "fetch", *server, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "Nothing was fetched" in err and "no pin" in err and not out.exists()
    assert cli_main(["ring", "status", *server]) == 0
    text = capsys.readouterr().out
    assert "Signatures NOT checked: no pin" in text and "signed by the site whose turn it was" not in text
    assert cli_main(["ring", "fetch", *server, "--out", str(out), "--signers", str(coordinator)]) == 2
    assert "signing key of site(s) a, b changed" in capsys.readouterr().err and not out.exists()
    assert cli_main(["ring", "status", *server, "--signers", str(coordinator)]) == 0
    assert "REFUSED (key-change)" in capsys.readouterr().out
    assert cli_main(["ring", "fetch", *server, "--out", str(out), "--site", "c", "--trust-dir", str(tmp_path)]) == 2
    assert "has not pinned" in capsys.readouterr().err and not out.exists()


# -- any member takes any turn ------------------------------------------------------------


def test_a_turn_taken_in_another_sites_place_needs_its_signed_expired_lease(tmp_path, toy_trainers):
    ring = Ring(tmp_path, lease_ttl_s=0.3, clock_skew_s=0.0)
    ring.turn(toy_trainers["a"], "a")
    ring.turn(toy_trainers["b"], "b")
    m = read_manifest(ring.t)
    fresh = replace(TrustStore(ring.trust("a")).get(m.ring_id), head=None)  # a site seeing it anew
    # Member a re-signs turn 2, site b's, as its own "in place of b", with no lease break.
    rec = m.turn_records[1]
    forged = sign_record(ring.signers["a"], m, replace(rec, site="a", in_place_of="b"))
    history = tuple(forged if h is rec else h for h in m.history)
    best = replace(m.best, weights=forged.weights_ref()) if m.best.weights.version == 2 else m.best
    shown = replace(m, history=history, weights=forged.weights_ref(), best=best)
    v = verify_chain(parse_manifest(shown.to_bytes(), "manifest.json"), fresh)
    assert v.problem is not None and v.problem.kind == "substitution" and len(v.records) == 1
    assert "without signed evidence of a lease break" in str(v.problem)
    # The real thing: b takes its turn 4 and stalls; once b's signed lease expired, a takes over.
    ring.turn(toy_trainers["a"], "a")
    stalled = T.take_turn(ring.t, toy_trainers["b"], ring.opts("b"), NEVER_CANCELLED)
    while not next(stalled).stage.startswith("Epoch"):
        pass
    del stalled  # b dies while training: its lease stays on the server
    out = ring.turn(toy_trainers["a"], "a")
    assert out.record.in_place_of == "b" and out.record.lease_break.lease.site == "b"
    v = verify_chain(read_manifest(ring.t), fresh)
    assert v.problem is None and len(v.records) == 4


# -- best repointed ------------------------------------------------------------------


def test_best_is_the_best_of_the_signed_records(tmp_path, capsys):
    ring = Ring(tmp_path)
    ring.turn(StandIn(), "a")  # val loss 0.9
    ring.turn(StandIn(), "b")  # 0.8: the best
    doc = ring.manifest_doc()
    first = _records(doc)[0]  # the server points 'best' at version 1, labelled as site b's
    doc["best"] = {
        "val_loss": first["metrics"]["val_loss"],
        "weights": {**doc["weights"], "file": first["weights_file"], "sha256": first["weights_sha256"]}
        | {"version": 1, "site": "b", "turn": 0, "size": first["weights_size"]},
    }
    ring.write_manifest(doc)
    out = tmp_path / "best.safetensors"
    pin = ["--site", "a", "--trust-dir", str(ring.trust("a"))]
    assert cli_main(["ring", "fetch", "--server", str(ring.root), "--out", str(out), "--which", "best", *pin]) == 2
    assert "'best' weights (version 1) are not the best of the signed turns (version 2" in capsys.readouterr().err
    assert not out.exists()


# -- unsigned settings drive turns -------------------------------------------------------

TAMPERING = {
    "lease time": lambda d: d["config"].update(lease_ttl_s=0.001, clock_skew_s=0.0),
    "reset optimizer": lambda d: d["config"].update(reset_optimizer=True),
    "patience": lambda d: d["config"].update(patience=1),
    "status": lambda d: d.update(status="converged"),
    "patience counter": lambda d: d.update(patience_counter=7),
    "per-site counter": lambda d: d["per_site"]["a"].update(patience_counter=9),
    "record improved": lambda d: _records(d)[-1].update(improved=not _records(d)[-1]["improved"]),
    "record counter": lambda d: _records(d)[-1].update(patience_counter=5),
    "file site label": lambda d: d["weights"].update(site="b"),
    "file turn": lambda d: d["weights"].update(turn=0),
    "file size": lambda d: d["weights"].update(size=d["weights"]["size"] + 1),
}


@pytest.mark.parametrize("what", TAMPERING)
def test_the_server_cannot_change_what_drives_turns(tmp_path, toy_trainers, what):
    ring = Ring(tmp_path, lease_ttl_s=60.0, clock_skew_s=1.0)
    for site in "aba":
        ring.turn(toy_trainers[site], site)
    m = read_manifest(ring.t)  # site b's turn: b holds a fresh, signed lease
    lease = new_lease("b", m.turns_done, 60.0, ring.signers["b"], m.ring_id)
    assert try_acquire(ring.t, lease)
    doc = ring.manifest_doc()
    TAMPERING[what](doc)
    ring.write_manifest(doc)
    with pytest.raises(RingTrustError, match="(?i)refused"):
        ring.turn(toy_trainers["a"], "a")  # a neither breaks b's lease nor believes the server's labels
    assert read_lease(ring.t).lease.token == lease.token and read_manifest(ring.t).turns_done == 3


# -- Adam moments leave by default ---------------------------------------------------------


def test_adam_moments_stay_home_unless_the_site_shares_them(tmp_path, toy_sites):
    ring = Ring(tmp_path)
    trust = lambda site: ["--trust-dir", str(ring.trust(site))]  # noqa: E731 - pinned as the ring was made
    assert cli_main(_cli_turn(ring, "a", toy_sites["a"], tmp_path, *trust("a"))) == 0
    m = read_manifest(ring.t)
    assert m.optimizer is None and not list((ring.root / "optimizer").iterdir())
    assert cli_main(_cli_turn(ring, "b", toy_sites["b"], tmp_path, *trust("b"), "--share-optimizer")) == 0
    m = read_manifest(ring.t)
    assert m.optimizer is not None and m.turn_records[-1].optimizer_sha256 == m.optimizer.sha256


# -- the audit over-promises ----------------------------------------------------------------


def test_the_audit_finds_what_it_claims_to_and_says_what_it_checked(tmp_path, toy_trainers, capsys):
    ring = Ring(tmp_path)
    ring.turn(toy_trainers["a"], "a", share_optimizer=True)
    assert audit_server(ring.t, network_shapes).flagged == []
    doc = ring.manifest_doc()
    doc["per_site"]["a"]["Doe_John_MRN_1234567"] = 1  # a key named after a patient
    hidden = "Doe John 1970-01-01 MRN 1234567".encode().hex()  # 64 hex digits: looks like a hash
    doc["history"][0]["detail"] = "Ring created for sites a, b, fixed order."
    doc["history"].append({"event": "init", "at": doc["created_at"], "site": "a", "detail": hidden})
    ring.write_manifest(doc)
    (ring.root / "manifest.json.tmp-patientlist").write_text('{"patients": ["DOE^JOHN"]}')
    (ring.root / "manifest.json.tmp-0123456789ab").write_text('{"patients": ["DOE^JOHN"]}')  # a temp's name
    w = ring.root / read_manifest(ring.t).weights.file
    extra = {**toy_network(16).state_dict(), "Doe_John_scan": torch.zeros(4)}
    unnamed = ring.root / "weights" / "v000009-a-deadbeef.safetensors"
    unnamed.write_bytes(st_save(extra, metadata={"format": "hemarelay-weights/1"}))
    report = audit_server(ring.t, network_shapes)
    flagged = "\n".join(f"{f}: {p}" for f, p in report.flagged)
    assert "Doe_John_MRN_1234567" in flagged  # the key itself
    assert "hex that reads as text ('Doe John 1970" in flagged
    assert "manifest.json.tmp-patientlist: not a file the ring writes" in flagged
    assert "manifest.json.tmp-0123456789ab: <key> = 'patients'" in flagged  # temporary files are read too
    assert "'Doe_John_scan': not a weight of the network toy-mlp-8x16" in flagged
    assert f"{unnamed.relative_to(ring.root)}: not named by the manifest" in flagged
    assert cli_main(["ring", "audit", "--server", str(ring.root)]) == 1
    out = capsys.readouterr().out
    assert "Checked: " in out and "file(s) read, 1 of them temporary" in out and "matched by name and shape" in out
    assert "0 item(s) flagged" not in out
    w.write_bytes(w.read_bytes() + b"Doe John")  # bytes after the tensors
    assert any("after its tensors" in p for _, p in audit_server(ring.t, network_shapes).flagged)
    # An unknown network is not a clean bill: the audit says it could not check.
    assert any("could not be checked" in p for _, p in audit_server(ring.t).flagged)


# -- weights size unsigned -------------------------------------------------------------------


def test_a_kept_version_larger_than_its_signed_size_is_not_read(tmp_path, monkeypatch):
    from core.site.sync import sync_once

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    ring = Ring(tmp_path, sites=("a", "b"))
    for site in "ab":
        ring.turn(StandIn(), site)
    m = read_manifest(ring.t)
    first = ring.root / m.turn_records[0].weights_file  # kept (keep_versions), neither latest nor best
    first.write_bytes(first.read_bytes() + b"\0" * (4 << 20))  # the server makes it 4 MB larger
    setup = _site_setup(ring, "a")
    result = run_to_end(sync_once(setup, store_root=tmp_path / "models"))
    assert any("v1 from site a" in p and "refused without reading it" in p for p in result.problems), result.problems
    assert [v.version for v in result.new_versions] == [2]


def _site_setup(ring: Ring, site: str):
    """Site ``site`` of ``ring`` as the desktop application sets it up, with its key and pin."""
    import shutil

    from core.site.setup import SiteSetup, signing_key_path, trust_dir

    setup = SiteSetup(site=site, server=str(ring.root))
    signing_key_path(setup).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(ring.tmp / "keys" / f"{site}.key", signing_key_path(setup))
    trust_dir(setup).mkdir(parents=True, exist_ok=True)
    for f in ring.trust(site).glob("*.json"):
        shutil.copy(f, trust_dir(setup) / f.name)
    return setup


# -- refused bytes kept --------------------------------------------------------------------


def test_the_sync_keeps_only_verified_records_under_their_own_labels(tmp_path, monkeypatch):
    from core.site.sync import sync_once
    from core.site.versions import ModelStore

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    ring = Ring(tmp_path)
    for site in "ab":
        ring.turn(StandIn(), site)
    doc = ring.manifest_doc()
    second = _records(doc)[1]  # the server shows version 2's bytes under a "version 1" pointer
    doc["weights"] = {**doc["weights"], "version": 1, "site": "a", "turn": 0}
    doc["weights"].update(file=second["weights_file"], sha256=second["weights_sha256"])
    ring.write_manifest(doc)
    result = run_to_end(sync_once(_site_setup(ring, "a"), store_root=tmp_path / "models"))
    assert any(r.kind == "substitution" for r in result.refused)
    records = {r.version: r for r in read_manifest(ring.t).turn_records}
    kept = [v for v in ModelStore.for_ring(doc["ring_id"], tmp_path / "models").versions() if not v.shipped]
    assert sorted(v.version for v in kept) == [1, 2]  # (version 0 is the default model shipped with the program)
    assert all(v.sha256 == records[v.version].weights_sha256 and v.site == records[v.version].site for v in kept)


# -- the smaller ones --------------------------------------------------------------------------


def test_a_signature_has_one_spelling(tmp_path, toy_trainers):
    ring = Ring(tmp_path)
    ring.turn(toy_trainers["a"], "a")
    doc = ring.manifest_doc()
    _records(doc)[0]["signature"] = _records(doc)[0]["signature"].upper()  # verifies, but hashes differently
    ring.write_manifest(doc)
    with pytest.raises(RingStateError, match="not a valid ring manifest.*unexpected signature"):
        read_manifest(ring.t)


def test_a_members_crafted_optimizer_file_is_refused_cleanly(tmp_path, toy_trainers):
    ring = Ring(tmp_path)
    ring.turn(toy_trainers["a"], "a", share_optimizer=True)
    m = read_manifest(ring.t)
    crafted = st_save(
        {"state": torch.zeros(1), "state.0.step": torch.tensor(-1.0)},
        metadata={"format": "hemarelay-optimizer/1", OPTIMIZER_JSON_KEY: json.dumps({"scalars": {}})},
    )
    (ring.root / m.optimizer.file).write_bytes(crafted)  # member a publishes it, signed with its own key
    rec = replace(m.turn_records[0], optimizer_sha256=sha256_hex(crafted), optimizer_size=len(crafted))
    rec = sign_record(ring.signers["a"], m, replace(rec, signature=""))
    m = replace(m, history=(m.history[0], rec), optimizer=rec.optimizer_ref())
    ring.write_manifest(m.to_bytes())
    with pytest.raises(CorruptWeightsError, match="not a readable optimizer state file"):
        ring.turn(toy_trainers["b"], "b")
    assert read_lease(ring.t) is None and read_manifest(ring.t).turns_done == 1


def _advance_many(folder: str, ring_id: str, turns: list[int]) -> None:
    store = TrustStore(Path(folder))
    for n in turns:
        store.advance(ring_id, Head(n, n + 1, f"{n:064x}"))


def test_one_writer_for_the_trust_file_and_the_head_never_moves_back(tmp_path):
    ring_id = "0" * 32
    store = TrustStore(tmp_path)
    store.pin(ring_id, Pin(("a", "b"), "fixed", 0, {}, "1" * 64))
    store.advance(ring_id, Head(5, 6, "5" * 64))
    store.advance(ring_id, Head(2, 3, "2" * 64))  # a stale writer (a sync that read an older manifest)
    assert store.get(ring_id).head.turn == 5
    # The desktop application's sync and its training child at once: every write lands, none undone.
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_advance_many, args=(str(tmp_path), ring_id, list(range(k, 80, 2)))) for k in (6, 7)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
    assert [p.exitcode for p in procs] == [0, 0] and store.get(ring_id).head.turn == 79


def test_a_folder_swapped_for_a_link_after_the_check_is_not_followed(tmp_path, monkeypatch):
    t = DirectoryTransport(tmp_path / "ring")
    t.makedirs("leases")
    elsewhere = tmp_path / "account"
    elsewhere.mkdir()
    (elsewhere / "id_ed25519").write_text("PRIVATE KEY")
    (tmp_path / "ring" / "leases").rmdir()
    (tmp_path / "ring" / "leases").symlink_to(elsewhere)  # swapped after guard() looked (lstat said folder)
    monkeypatch.setattr(DirectoryTransport, "_is_link", lambda self, rel: False)
    with pytest.raises(UnsafeServerPathError, match="symbolic link"):
        t.read_bytes("leases/id_ed25519")
    with pytest.raises(UnsafeServerPathError, match="symbolic link"):
        t.delete("leases/id_ed25519")
    assert (elsewhere / "id_ed25519").exists()


def test_a_folder_swapped_for_a_link_is_found_over_sftp(sshd, tmp_path, monkeypatch):
    from core.ring.transport_sftp import SftpTransport

    from ring_helpers import sftp

    with sftp(sshd, tmp_path / "ring") as t:
        t.makedirs("leases")
        elsewhere = tmp_path / "account"
        elsewhere.mkdir()
        (elsewhere / "notes.json").write_text("the account's own file")
        (tmp_path / "ring" / "leases").rmdir()
        (tmp_path / "ring" / "leases").symlink_to(elsewhere)
        monkeypatch.setattr(SftpTransport, "_is_link", lambda self, rel: False)  # the swap after the lstat
        with pytest.raises(UnsafeServerPathError, match="resolves to another folder"):
            t.read_bytes("leases/notes.json")
        with pytest.raises(UnsafeServerPathError, match="resolves to another folder"):
            t.delete("leases/notes.json")
    assert (elsewhere / "notes.json").exists()
