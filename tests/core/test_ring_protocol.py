"""The ring protocol on a folder server with a real (tiny) torch trainer: turns,
order, convergence, leases, crashes at every step, corruption, audit, privacy."""

from __future__ import annotations

import json
import sys
import time
import types
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Generator

import pytest
import torch

from core.cli import main as cli_main
from core.errors import CancelledError, ConfigError
from core.progress import NEVER_CANCELLED, CancelToken, Progress, run_to_end
from core.ring import turn as T
from core.ring.audit import read_audit
from core.ring.codec import decode_weights, sha256_hex
from core.ring.errors import (
    CorruptWeightsError,
    LeaseLostError,
    ManifestConflictError,
    RingStateError,
    TrainerUnavailableError,
)
from core.ring.lease import Lease, new_lease, try_acquire
from core.ring.manifest import LEASE, MANIFEST, Holder, RingConfig, RingEvent, parse_utc, read_manifest, site_for_turn
from core.ring.server import commit_manifest, fetch_weights, init_ring
from core.ring.toy import ToyTrainer
from core.ring.trainer import TurnInput, TurnResult
from core.ring.transport_dir import DirectoryTransport
from core.turn_trainers import TrainerChoice, make_turn_trainer

from privacy_scan import forbidden_terms, scan_server_dir
from ring_helpers import FAST

torch.set_num_threads(2)


def make_ring(tmp_path: Path, sites=("a", "b"), **cfg) -> DirectoryTransport:
    t = DirectoryTransport(tmp_path / "ring")
    init_ring(t, RingConfig(sites=tuple(sites), **cfg))
    return t


def opts(site: str, tmp_path: Path | None = None, **kw) -> T.SiteOptions:
    audit = tmp_path / f"audit-{site}.jsonl" if tmp_path else None
    return T.SiteOptions(site=site, audit_path=audit, **{**FAST, **kw})


def turn(t, trainer, site, tmp_path=None, **kw) -> T.TurnOutcome:
    return run_to_end(T.take_turn(t, trainer, opts(site, tmp_path, **kw), NEVER_CANCELLED))


def advance_until(gen: Generator, pred: Callable[[Progress], bool]) -> Progress:
    for ev in gen:
        if pred(ev):
            return ev
    raise AssertionError("the turn ended before the awaited event")


def files(t: DirectoryTransport, folder: str) -> set[str]:
    return {f"{folder}/{f.name}" for f in t.list_dir(folder)}


def assert_server_consistent(t: DirectoryTransport) -> None:
    """Every file the manifest names is complete and matches its sha256; no
    unreferenced weights are visible except temp files."""
    m = read_manifest(t)
    for ref in (m.weights, m.optimizer, m.best.weights if m.best else None):
        if ref:
            assert sha256_hex((t.root / ref.file).read_bytes()) == ref.sha256
    versions = [r.version for r in m.turn_records]
    assert versions == list(range(1, len(versions) + 1))
    assert [r.parent_version for r in m.turn_records] == list(range(0, len(versions)))


def test_ring_of_one_converges_and_every_site_stops(tmp_path, toy_sites, toy_trainers):
    t = make_ring(tmp_path, sites=("solo",), patience=2, max_turns=40)
    run = run_to_end(T.run_site(t, toy_trainers["a"], opts("solo", tmp_path), NEVER_CANCELLED, wait=True))
    m = run.manifest
    assert m.status in ("converged", "stopped") and m.convergence is not None
    assert len(run.turns) == m.turns_done >= 3
    if m.status == "converged":  # the toy model stops improving well before 40 turns
        assert m.convergence.rule == "global-patience" and m.patience_counter == 2
        assert [r.improved for r in m.turn_records][-2:] == [False, False]
    assert m.best.val_loss == min(r.metrics["val_loss"] for r in m.turn_records)
    assert isinstance(m.history[-1], RingEvent) and m.history[-1].event == m.status
    assert_server_consistent(t)
    # Later calls return at once without training: the ring is over.
    again = turn(t, toy_trainers["a"], "solo")
    assert not again.trained and again.manifest.revision == m.revision
    data_bytes, ref, _ = fetch_weights(t, "best")
    assert ref == m.best.weights and set(decode_weights(data_bytes, "best")) == {
        "0.weight",
        "0.bias",
        "2.weight",
        "2.bias",
    }
    # The audit log records every transfer with the version and sha256 the manifest has.
    log = read_audit(tmp_path / "audit-solo.jsonl")
    uploads = {(e.version, e.sha256) for e in log if e.action == "upload" and e.file.startswith("weights/")}
    assert uploads == {(r.version, r.weights_sha256) for r in m.turn_records}
    downloads = [e for e in log if e.action == "download" and e.file.startswith("weights/")]
    assert len(downloads) == m.turns_done - 1 and all(len(e.sha256) == 64 for e in downloads)
    # Old versions are pruned: the last keep_versions turns, the best and the latest stay.
    assert len(files(t, "weights")) <= m.config.keep_versions + 1


def test_two_sites_alternate_and_pass_weights_and_optimizer(tmp_path, toy_trainers):
    t = make_ring(tmp_path, sites=("a", "b"), patience=50)
    for site in ["a", "b", "a", "b"]:  # both sites opt in to sharing Adam's moments
        out = turn(t, toy_trainers[site], site, tmp_path, share_optimizer=True)
        assert out.trained and out.record.site == site
        assert out.timings.train_s > 0 and out.timings.overhead_s < 5
    m = read_manifest(t)
    assert [r.site for r in m.turn_records] == ["a", "b", "a", "b"]
    assert [r.optimizer_carried for r in m.turn_records] == [False, True, True, True]
    assert m.optimizer is not None and m.optimizer.version == 4
    assert m.per_site["a"].turns == m.per_site["b"].turns == 2
    assert_server_consistent(t)
    assert files(t, "optimizer") == {m.optimizer.file}  # only the latest optimizer state is kept
    # Nothing but weights, optimizer state and scalar metrics on the server.
    terms = forbidden_terms(toy_trainers["a"].data_dir) | forbidden_terms(toy_trainers["b"].data_dir)
    assert any(x.startswith("patient-") for x in terms)
    shapes = {k: tuple(v.shape) for k, v in toy_trainers["a"].build(0).state_dict().items()}
    assert scan_server_dir(t.root, terms, shapes) == []


class Recording:
    """A trainer wrapper that records what the ring handed it."""

    def __init__(self, inner: ToyTrainer) -> None:
        self.inner, self.model_id, self.inputs = inner, inner.model_id, []

    def train_turn(self, inp: TurnInput, token: CancelToken):
        self.inputs.append(inp)
        return (yield from self.inner.train_turn(inp, token))


def test_reset_optimizer_sends_no_optimizer_state(tmp_path, toy_trainers):
    t = make_ring(tmp_path, sites=("a", "b"), reset_optimizer=True, epochs_per_turn=2)
    rec = {s: Recording(toy_trainers[s]) for s in ("a", "b")}
    for site in ["a", "b", "a"]:
        turn(t, rec[site], site)
    assert all(i.optimizer_state is None for r in rec.values() for i in r.inputs)
    assert rec["a"].inputs[0].weights is None and rec["b"].inputs[0].weights is not None
    assert [i.epochs for i in rec["a"].inputs] == [2, 2]
    assert files(t, "optimizer") == set() and read_manifest(t).optimizer is None
    assert not any(r.optimizer_carried for r in read_manifest(t).turn_records)


def test_three_sites_shuffled_run_concurrently_until_converged(tmp_path, toy_trainers):
    """Three sites step in turn (cooperatively, in one thread): each waits for its
    turn in the seeded order and all three stop when the ring ends."""
    t = make_ring(tmp_path, sites=("a", "b", "c"), order="shuffle", seed=11, patience=4, max_turns=6)
    gens = {s: T.run_site(t, toy_trainers[s], opts(s, poll_s=0.0), NEVER_CANCELLED, wait=True) for s in "abc"}
    results = {}
    deadline = time.monotonic() + 60
    while gens and time.monotonic() < deadline:
        for s in list(gens):
            try:
                next(gens[s])
            except StopIteration as stop:
                results[s] = stop.value
                del gens[s]
    assert not gens, "sites still running"
    m = read_manifest(t)
    assert m.status in ("converged", "stopped")
    assert [r.site for r in m.turn_records] == [site_for_turn(m.config, i) for i in range(m.turns_done)]
    assert sum(len(r.turns) for r in results.values()) == m.turns_done
    assert_server_consistent(t)


def test_a_held_lease_makes_the_other_site_wait(tmp_path, toy_trainers):
    """Two sites want the same turn: exactly one trains, the other waits (lease renewed)."""
    t = make_ring(tmp_path, sites=("a",), lease_ttl_s=0.5, clock_skew_s=0.0)
    slow_gen = T.take_turn(t, Slow(toy_trainers["a"], 0.03, 5), opts("a"), NEVER_CANCELLED)
    advance_until(slow_gen, lambda e: e.stage.startswith("Epoch"))  # first holds the lease and trains
    other = T.take_turn(t, toy_trainers["a"], opts("a"), NEVER_CANCELLED)
    stages = []
    start = time.monotonic()
    first_done = None
    while True:  # alternate: the holder trains (renewing its lease), the other polls
        if first_done is None:
            try:
                next(slow_gen)
            except StopIteration as stop:
                first_done = stop.value
        try:
            stages.append(next(other).stage)
        except StopIteration as stop:
            second = stop.value
            break
    assert time.monotonic() - start > 1.0  # twice the lease time: renewals kept it
    assert first_done is not None and first_done.record.turn == 0
    assert second.record.turn == 1 and T.STAGE_WAIT in stages
    m = read_manifest(t)
    assert not any(isinstance(h, RingEvent) and h.event == "lease_break" for h in m.history)
    assert [r.parent_version for r in m.turn_records] == [0, 1]


class Slow:
    """Adds a pause after each training event (a slow GPU epoch)."""

    def __init__(self, inner, pause_s: float, repeat: int) -> None:
        self.inner, self.pause_s, self.repeat, self.model_id = inner, pause_s, repeat, inner.model_id

    def train_turn(self, inp, token):
        gen = self.inner.train_turn(
            TurnInput(inp.weights, inp.optimizer_state, self.repeat, inp.seed, inp.turn, inp.site), token
        )
        while True:
            try:
                ev = next(gen)
            except StopIteration as stop:
                return stop.value
            time.sleep(self.pause_s)
            yield ev


def test_expired_lease_is_broken_and_next_site_takes_over(tmp_path, toy_trainers):
    t = make_ring(tmp_path, sites=("a", "b"), lease_ttl_s=0.5, clock_skew_s=0.0)
    turn(t, toy_trainers["a"], "a")
    dying = T.take_turn(t, toy_trainers["b"], opts("b"), NEVER_CANCELLED)
    advance_until(dying, lambda e: e.stage.startswith("Epoch"))
    del dying  # site b dies while training: its lease stays on the server
    assert (t.root / LEASE).exists()
    expires = parse_utc(Lease.parse((t.root / LEASE).read_bytes()).expires_at)
    taking_over = T.take_turn(t, toy_trainers["a"], opts("a"), NEVER_CANCELLED)
    advance_until(taking_over, lambda e: e.stage == T.STAGE_LEASE)
    assert datetime.now(timezone.utc) >= expires  # not before the lease expired
    out = run_to_end(taking_over)
    assert out.record.turn == 1 and out.record.site == "a" and out.record.in_place_of == "b"
    assert out.record.parent_version == 1  # nothing published was lost
    m = read_manifest(t)
    breaks = [h for h in m.history if isinstance(h, RingEvent) and h.event == "lease_break"]
    assert len(breaks) == 1 and "lease of site b" in breaks[0].detail
    assert len(list((t.root / "leases").iterdir())) == 1  # the broken lease is kept as evidence
    assert m.next_site == "a" and turn(t, toy_trainers["a"], "a").record.turn == 2
    assert turn(t, toy_trainers["b"], "b").record.turn == 3  # b rejoins on its own turn
    assert_server_consistent(t)


CRASH_STAGES = [
    T.STAGE_LEASE,
    T.STAGE_DOWNLOAD,
    T.STAGE_TRAIN,
    "Epoch",
    T.STAGE_UPLOAD,
    T.STAGE_PUBLISH,
    T.STAGE_RELEASE,
]


@pytest.mark.parametrize("stage", CRASH_STAGES)
def test_crash_at_any_step_leaves_the_ring_readable_and_resumable(tmp_path, toy_trainers, stage):
    t = make_ring(tmp_path, sites=("a", "b"), lease_ttl_s=0.3, clock_skew_s=0.0, keep_versions=10)
    turn(t, toy_trainers["a"], "a")
    before = read_manifest(t)
    crashing = T.take_turn(t, toy_trainers["b"], opts("b"), NEVER_CANCELLED)
    advance_until(crashing, lambda e: e.stage.startswith(stage))
    crashing.close()  # the process dies here: no clean-up code runs
    m = read_manifest(t)  # readable at once
    published = m.turns_done == 2
    assert published == (stage == T.STAGE_RELEASE)
    assert_server_consistent(t)
    if not published:
        assert m.weights == before.weights
    # Resume: sites take the turns the ring gives them until four are done.
    for _ in range(6):
        m = read_manifest(t)
        if m.turns_done == 4:
            break
        turn(t, toy_trainers[m.next_site], m.next_site)
    m = read_manifest(t)
    assert m.turns_done == 4 and m.status == "running"
    assert_server_consistent(t)
    referenced = {r.weights_file for r in m.turn_records}
    assert files(t, "weights") <= referenced  # orphans and temp files were pruned
    assert not (t.root / LEASE).exists()
    assert not [p for p in t.root.iterdir() if ".tmp-" in p.name]


def test_corrupt_weights_are_refused_with_a_clear_message(tmp_path, toy_trainers, toy_sites, capsys):
    t = make_ring(tmp_path, sites=("a", "b"))
    turn(t, toy_trainers["a"], "a")
    m = read_manifest(t)
    path = t.root / m.weights.file
    blob = bytearray(path.read_bytes())
    blob[-3] ^= 0x01
    path.write_bytes(bytes(blob))
    with pytest.raises(CorruptWeightsError, match=r"weights file .*v000001.* is corrupt: its sha256"):
        turn(t, toy_trainers["b"], "b")
    assert not (t.root / LEASE).exists()  # released for whoever repairs the ring
    assert read_manifest(t).turns_done == 1
    rc = cli_main(
        [
            "ring",
            "turn",
            "--server",
            str(t.root),
            "--site",
            "b",
            "--data",
            str(toy_sites["b"]),
            "--trainer",
            "toy",
            "--audit-log",
            str(tmp_path / "cli-audit.jsonl"),
            "--allow-unsigned",
            "--signing-key",
            str(tmp_path / "b.key"),
            "--trust-dir",
            str(tmp_path / "trust-b"),
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err[-1].startswith("hemarelay: error: The weights file") and "corrupt" in err[-1]


def test_cancel_releases_the_lease_and_publishes_nothing(tmp_path, toy_trainers):
    t = make_ring(tmp_path, sites=("a",))
    token = CancelToken()
    gen = T.take_turn(t, toy_trainers["a"], opts("a"), token)
    advance_until(gen, lambda e: e.stage.startswith("Epoch"))
    token.cancel()
    with pytest.raises(CancelledError):
        run_to_end(gen)
    assert not (t.root / LEASE).exists() and read_manifest(t).turns_done == 0
    assert list((t.root / "weights").iterdir()) == []


def test_membership_and_model_checks(tmp_path, toy_trainers, toy_sites):
    t = make_ring(tmp_path, sites=("a", "b"))
    with pytest.raises(RingStateError, match="'z' is not a member"):
        turn(t, toy_trainers["a"], "z")
    turn(t, toy_trainers["a"], "a")
    with pytest.raises(RingStateError, match="trains model 'toy-mlp-8x16'.*'toy-mlp-8x4'"):
        turn(t, ToyTrainer(toy_sites["b"], hidden=4), "b")
    with pytest.raises(RingStateError, match="already exists"):
        init_ring(t, RingConfig(sites=("a",)))
    with pytest.raises(RingStateError, match="No ring at"):
        read_manifest(DirectoryTransport(tmp_path / "nothing"))


def test_diverged_training_publishes_nothing(tmp_path, toy_trainers):
    class Diverging:
        model_id = toy_trainers["a"].model_id

        def train_turn(self, inp, token):
            result = yield from toy_trainers["a"].train_turn(inp, token)
            return TurnResult(result.weights, None, {"val_loss": float("nan")}, result.n_examples)

    t = make_ring(tmp_path, sites=("a",))
    with pytest.raises(Exception, match="diverged"):
        turn(t, Diverging(), "a")
    assert read_manifest(t).turns_done == 0 and not (t.root / LEASE).exists()


def test_trainer_factory(monkeypatch, toy_sites):
    assert make_turn_trainer(TrainerChoice(toy_sites["a"], "toy")).model_id == "toy-mlp-8x16"
    with pytest.raises(TrainerUnavailableError, match="cannot be loaded"):
        make_turn_trainer(TrainerChoice(toy_sites["a"], "no.such.module:make"))
    with pytest.raises(ConfigError, match="package.module:function"):
        make_turn_trainer(TrainerChoice(toy_sites["a"], "no-colon"))
    plugin = types.ModuleType("ring_plugin_for_test")
    plugin.make = lambda choice: ToyTrainer(choice.data, hidden=6)
    plugin.not_a_trainer = lambda choice: object()
    monkeypatch.setitem(sys.modules, "ring_plugin_for_test", plugin)
    assert make_turn_trainer(TrainerChoice(toy_sites["a"], "ring_plugin_for_test:make")).model_id == "toy-mlp-8x6"
    with pytest.raises(TrainerUnavailableError, match="did not return a ring trainer"):
        make_turn_trainer(TrainerChoice(toy_sites["a"], "ring_plugin_for_test:not_a_trainer"))
    # The hematoma trainer from plain values: preset and overrides reach its settings.
    hematoma = make_turn_trainer(TrainerChoice(toy_sites["a"], preset="cpu-small", overrides=("ds=2",)))
    assert hematoma.model_id.endswith("-ds2") and hematoma.config.ds == 2


def test_cli_init_turn_status(tmp_path, toy_sites, capsys):
    ring = str(tmp_path / "ring")
    keys = {
        s: ["--signing-key", str(tmp_path / f"{s}.key"), "--trust-dir", str(tmp_path / f"trust-{s}")]
        for s in ("a", "b")
    }
    signers = tmp_path / "signers"
    for s in ("a", "b"):  # each site prints its public key for the coordinator
        assert cli_main(["ring", "key", "--site", s, *keys[s][:2]]) == 0
        signers.write_text(
            signers.read_text() + capsys.readouterr().out if signers.exists() else capsys.readouterr().out
        )
    assert (
        cli_main(
            [
                "ring",
                "init",
                "--server",
                ring,
                "--sites",
                "a,b",
                "--patience",
                "3",
                "--order",
                "shuffle",
                "--seed",
                "4",
                "--signers",
                str(signers),
            ]
        )
        == 0
    )
    assert "Ring created" in capsys.readouterr().out
    assert cli_main(["ring", "init", "--server", ring, "--sites", "a"]) == 2
    assert "already exists" in capsys.readouterr().err
    m = read_manifest(DirectoryTransport(Path(ring)))
    first = m.next_site
    assert (
        cli_main(
            [
                "ring",
                "turn",
                "--server",
                ring,
                "--site",
                first,
                "--data",
                str(toy_sites[first]),
                "--trainer",
                "toy",
                "--audit-log",
                str(tmp_path / "a.jsonl"),
                "--trust-signers",  # the coordinator's file: the keys a person at this site confirms
                str(signers),
                *keys[first],
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert f"site {first} published weights version 1" in out
    assert cli_main(["ring", "status", "--server", ring]) == 0
    text = capsys.readouterr().out
    assert "1 turns done" in text and "shuffle order" in text and "global" in text
    assert "Signatures NOT checked: no pin" in text  # the keys on the server prove nothing by themselves
    assert cli_main(["ring", "status", "--server", ring, "--site", first, *keys[first][2:]]) == 0
    assert "all 1 turn(s) signed by the site whose turn it was" in capsys.readouterr().out
    assert cli_main(["ring", "status", "--server", ring, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["manifest"]["turns_done"] == 1 and doc["lease"] is None and doc["next_site"] in ("a", "b")
    out_file = tmp_path / "best.safetensors"
    assert cli_main(["ring", "fetch", "--server", ring, "--out", str(out_file), "--signers", str(signers)]) == 0
    assert sha256_hex(out_file.read_bytes()) == read_manifest(DirectoryTransport(Path(ring))).best.weights.sha256
    assert cli_main(["ring", "status", "--server", str(tmp_path / "nowhere")]) == 2
    assert "No ring at" in capsys.readouterr().err
    assert (Path(ring) / MANIFEST).exists()


def test_a_stalled_holder_loses_its_lease_and_cannot_publish_late(tmp_path, toy_trainers):
    t = make_ring(tmp_path, sites=("a", "b"), lease_ttl_s=0.3, clock_skew_s=0.0)
    turn(t, toy_trainers["a"], "a")
    zombie = T.take_turn(t, Slow(toy_trainers["b"], 0.0, 3), opts("b"), NEVER_CANCELLED)
    advance_until(zombie, lambda e: e.stage.startswith("Epoch"))  # b trains, then stalls
    out = turn(t, toy_trainers["a"], "a")  # a breaks the stale lease and takes turn 2
    assert out.record.turn == 1 and out.record.in_place_of == "b"
    with pytest.raises(LeaseLostError, match="broken"):
        run_to_end(zombie)  # b wakes up: its next renewal finds the ring moved on
    m = read_manifest(t)
    assert m.turns_done == 2 and [r.site for r in m.turn_records] == ["a", "a"]
    assert_server_consistent(t)
    assert not (t.root / LEASE).exists()


def test_manifest_compare_and_swap(tmp_path):
    t = make_ring(tmp_path, sites=("a",))
    m = read_manifest(t)
    lease = new_lease("a", 0, 60.0)
    assert try_acquire(t, lease) and not try_acquire(t, new_lease("a", 0, 60.0))
    first = commit_manifest(t, m, m.bumped(holder=Holder("a", lease.token, 0, "now")), lease)
    assert commit_manifest(t, m, first, lease) == first  # a retry after a lost answer is harmless
    with pytest.raises(ManifestConflictError, match="changed while site a held the lease"):
        commit_manifest(t, m, m.bumped(patience_counter=5), lease)
    other = new_lease("b", 0, 60.0)
    with pytest.raises(LeaseLostError):
        commit_manifest(t, first, first.bumped(), other)
    assert read_manifest(t) == first
    assert [p.name for p in t.root.iterdir() if ".tmp-" in p.name] == []


def test_toy_trainer_without_data_files_is_a_connection_check(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    trainer = make_turn_trainer(TrainerChoice(empty, "toy", site="a"))
    t = make_ring(tmp_path, sites=("a",))
    assert turn(t, trainer, "a").trained
    assert list(empty.iterdir()) == []  # nothing written into the site folder
