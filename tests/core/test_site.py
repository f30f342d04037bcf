"""core.site: the site's view of the ring, model versions kept locally, the
connection check, host keys, and the child process that runs a training turn.

Rings here are driven by a stand-in trainer that returns real Inception
weights without training (the ring protocol and the sync are what is tested);
the GUI tests run the real trainer on real cases.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from sshd import SshdServer

from core.cases.worklist import CaseStatus, StatusStore
from core.errors import CancelledError, ConfigError, HemaRelayError, InputError
from core.evaluation.scoring import CaseScore
from core.model.default import default_model_path
from core.model.weights import load_weights
from core.progress import CancelToken, Progress, run_collecting, run_to_end
from core.ring import RingConfig, init_ring, open_transport, parse_server_url
from core.ring.errors import HostKeyError
from core.ring.first_contact import confirm_ring
from core.ring.manifest import WEIGHTS_DIR, read_manifest
from core.ring.trust import TrustStore
from core.ring.turn import SiteOptions, take_turn
from core.site.connection import check_connection
from core.site.hostkey import probe_host_key, trust_host_key
from core.site.setup import SiteSetup, site_signer, trust_dir
from core.site.sync import sync_once
from core.site.training import approved_cases, train_my_turn
from core.site.versions import SHIPPED, LocalScore, ModelStore, ModelVersion
from core.user_dirs import state_dir

from ring_helpers import StandIn


@pytest.fixture(autouse=True)
def _state(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))


def _ring(folder: Path, sites=("a", "b"), **kw):
    """A signed ring: each site's key is the one its SiteSetup creates in the state folder,
    and a person at each site confirmed the ring's keys (its pin)."""
    signers = {s: site_signer(SiteSetup(site=s)).public for s in sites}
    with open_transport(parse_server_url(str(folder))) as t:
        m = init_ring(t, RingConfig(sites=sites, signers=signers, **kw).validate())
    for s in sites:
        confirm_ring(TrustStore(trust_dir(SiteSetup(site=s))), m)


def _turns(folder: Path, n: int) -> None:
    with open_transport(parse_server_url(str(folder))) as t:
        for _ in range(n):
            site = read_manifest(t).next_site
            opts = SiteOptions(site=site, poll_s=0.01, signer=site_signer(SiteSetup(site=site)))
            run_to_end(take_turn(t, StandIn(), opts, CancelToken()))


def test_site_view_says_whose_turn_it_is_and_when_each_site_trained(tmp_path):
    ring = tmp_path / "ring"
    _ring(ring, max_turns=3)
    a, b = SiteSetup(site="a", server=str(ring)), SiteSetup(site="b", server=str(ring))
    view = run_to_end(sync_once(a)).view
    assert (view.state, view.my_turn) == ("my turn", True)
    assert run_to_end(sync_once(b)).view.state == "waiting"
    _turns(ring, 1)
    va, vb = run_to_end(sync_once(a)).view, run_to_end(sync_once(b)).view
    assert (va.state, vb.state) == ("waiting", "my turn")
    assert "site b is next" in va.describe() and "Round 1, turn 2" in va.describe()
    rows = {r.site: r for r in va.rows()}
    assert rows["a"].turns == 1 and rows["a"].last_trained and rows["b"].next and not rows["b"].last_trained
    _turns(ring, 2)
    assert run_to_end(sync_once(a)).view.state == "stopped"
    z = run_to_end(sync_once(SiteSetup(site="z", server=str(ring)))).view
    assert z.state == "stopped" and not z.member


def test_sync_keeps_every_published_version_once_verified_with_its_origin(tmp_path):
    ring = tmp_path / "ring"
    _ring(ring)
    _turns(ring, 3)
    setup = SiteSetup(site="a", server=str(ring))
    events, result = run_collecting(sync_once(setup))
    assert sorted(v.version for v in result.new_versions) == [1, 2, 3]
    assert any(e.stage == "Downloading new weights" for e in events)
    m = read_manifest(open_transport(parse_server_url(str(ring))))
    store = ModelStore.for_ring(m.ring_id)
    assert store.folder.is_relative_to(state_dir())
    by_version = {r.version: r for r in m.turn_records}
    for v in store.ring_versions():
        r = by_version[v.version]
        assert (v.site, v.turn, v.round, v.sha256) == (r.site, r.turn, r.round, r.weights_sha256)
        assert v.val_loss == pytest.approx(r.metrics["val_loss"]) and v.score is None
        w = load_weights(store.path(v))  # a predict-ready weights file, verified on load
        assert w.meta.architecture == "inception" and f"v{v.version} from site {v.site}" in w.meta.version
    assert run_to_end(sync_once(setup)).new_versions == ()  # nothing twice
    # never used without the user choosing: the shipped default model stays in use, listed last
    assert store.chosen().shipped and store.versions()[-1] == store.chosen()


def test_tampered_weights_on_the_server_are_refused_and_nothing_is_kept_but_sync_goes_on(tmp_path):
    ring = tmp_path / "ring"
    _ring(ring)
    _turns(ring, 1)
    f = next((ring / WEIGHTS_DIR).iterdir())
    data = bytearray(f.read_bytes())
    data[-10] ^= 0xFF
    f.write_bytes(bytes(data))
    result = run_to_end(sync_once(SiteSetup(site="a", server=str(ring))))  # the sync itself goes on
    assert result.new_versions == () and len(result.problems) == 1
    assert "v1 from site a were not kept" in result.problems[0] and "corrupt" in result.problems[0]
    m = read_manifest(open_transport(parse_server_url(str(ring))))
    assert ModelStore.for_ring(m.ring_id).ring_versions() == []


def test_choosing_versions_rolls_back_and_survives_a_restart(tmp_path):
    ring = tmp_path / "ring"
    _ring(ring)
    _turns(ring, 2)
    res = run_to_end(sync_once(SiteSetup(site="a", server=str(ring))))
    store = ModelStore.for_ring(res.view.manifest.ring_id)
    assert store.choose(2).version == 2
    assert store.choose(1).version == 1  # roll back
    again = ModelStore.for_ring(res.view.manifest.ring_id)  # a new process reads the same index
    assert again.chosen().version == 1
    # the shipped default model stays in the table and can be chosen again (issue 26), with its score
    assert again.choose(SHIPPED).shipped and again.chosen().shipped
    assert again.path(again.chosen()) == default_model_path()
    shipped_score = LocalScore(3, 0.66, 1.0, (), "then")
    assert again.set_score(SHIPPED, shipped_score).score == shipped_score and again.chosen().score == shipped_score
    assert again.choose(1).version == 1 and again.get(SHIPPED).score == shipped_score
    score = LocalScore(1, 0.5, 2.0, (CaseScore("067", 0.5, 3.0, 5.0),), "now")
    assert again.set_score(1, score).score == score and again.get(1).score == score
    # records written before the score type was shared keep their meaning
    old = {
        **again.get(1).__dict__,
        "score": {
            "n_cases": 1,
            "mean_dice": 0.5,
            "mean_abs_volume_error_ml": 2.0,
            "cases": [{"label": "067", "dice": 0.5, "volume_ml": 3.0, "predicted_ml": 5.0}],
            "evaluated_at": "now",
        },
    }
    assert ModelVersion.from_json(old).score == score
    with pytest.raises(InputError, match="not kept"):
        again.choose(9)
    again.path(again.get(2)).unlink()
    with pytest.raises(InputError, match="missing"):
        again.choose(2)
    assert again.chosen().version == 1  # unchanged by the refusals
    (again.folder / "index.json").write_text("{not json")
    with pytest.raises(InputError, match="cannot be read"):
        again.versions()


def test_embedded_ring_needs_no_server(tmp_path):
    setup = SiteSetup(site="solo")  # no server: a local folder ring of one
    report = check_connection(setup)
    assert report.ok and "ring of sites solo" in report.message, report.message
    assert (state_dir() / "local-ring" / "solo" / "manifest.json").is_file()
    assert report.view.my_turn
    # this computer's ring starts from the shipped default model unless the site chooses scratch
    assert report.view.manifest.config.start_from == "default"
    scratch = check_connection(SiteSetup(site="solo2", start_from="scratch"))
    assert scratch.view.manifest.config.start_from == "scratch"
    with pytest.raises(ConfigError, match="start the ring from scratch"):  # another network cannot
        SiteSetup(site="solo3", preset="cpu-small").validated()
    assert SiteSetup(site="solo3", preset="cpu-small", start_from="scratch").validated()
    assert check_connection(setup).ok  # found, not created twice


def test_connection_check_explains_what_is_wrong(tmp_path):
    ring = tmp_path / "ring"
    missing = check_connection(SiteSetup(site="a", server=str(ring)))
    assert not missing.ok and "No ring at" in missing.message
    _ring(ring)
    other = check_connection(SiteSetup(site="c", server=str(ring)))
    assert not other.ok and "not a member" in other.message
    ok = check_connection(SiteSetup(site="a", server=str(ring)))
    assert ok.ok and not list(ring.glob(".hemarelay-write-check*"))
    os.chmod(ring, 0o555)
    try:
        if os.geteuid() != 0:  # root writes anyway
            ro = check_connection(SiteSetup(site="a", server=str(ring)))
            assert not ro.ok and "cannot write" in ro.message
    finally:
        os.chmod(ring, 0o755)


def test_site_setup_is_validated_with_clear_messages(tmp_path):
    with pytest.raises(ConfigError, match="Site name"):
        SiteSetup(site="a/b").validated()
    with pytest.raises(ConfigError, match="Sync interval"):
        SiteSetup(site="a", poll_s=0.5).validated()
    with pytest.raises(ConfigError, match="does not exist"):
        SiteSetup(site="a", key_file=str(tmp_path / "nokey")).validated()
    with pytest.raises(ConfigError, match="unsupported scheme"):
        SiteSetup(site="a", server="http://x/y").validated()
    with pytest.raises(ConfigError):
        SiteSetup(site="a", preset="no-such-preset").validated()


def test_a_turn_needs_approved_cases(tmp_path, site_a):
    folder = tmp_path / "site"
    folder.mkdir()
    for k in ("ct", "mask"):
        (folder / f"{k}_067.nii.gz").symlink_to(site_a / "test" / f"{k}_067.nii.gz")
    (folder / "ct_052.nii.gz").symlink_to(site_a / "test" / "ct_052.nii.gz")
    setup = SiteSetup(site="solo", data_folder=str(folder))
    with pytest.raises(InputError, match="approved for training"):
        run_to_end(train_my_turn(setup, CancelToken()))
    StatusStore(folder).set("067", CaseStatus.REVIEWED, "t")
    assert approved_cases(folder) == []
    StatusStore(folder).set("067", CaseStatus.APPROVED, "t")
    assert [c.case_id for c in approved_cases(folder)] == ["067"]


# -- the child process ----------------------------------------------------------
def _counting(n: int, token: CancelToken):
    for i in range(n):
        token.raise_if_cancelled()
        yield Progress("count", i, n)
    return {"pid": os.getpid(), "n": n}


def _failing(token: CancelToken):
    yield Progress("about to fail")
    raise InputError("ct_001.nii.gz is truncated")


def _endless(token: CancelToken):
    while True:
        token.raise_if_cancelled()
        yield Progress("working")
        time.sleep(0.02)


def _crashing(token: CancelToken):
    yield Progress("about to crash")
    os._exit(3)


def test_child_process_passes_events_result_and_typed_errors():
    from core.child_process import run_in_child

    events, out = run_collecting(run_in_child(_counting, 5, token=CancelToken()))
    assert [e.done for e in events] == [0, 1, 2, 3, 4] and out["n"] == 5 and out["pid"] != os.getpid()
    with pytest.raises(InputError, match="truncated"):
        run_to_end(run_in_child(_failing, token=CancelToken()))
    with pytest.raises(HemaRelayError, match=r"stopped unexpectedly \(exit code 3\)"):
        run_to_end(run_in_child(_crashing, token=CancelToken(), what="The test process"))


def test_child_process_stops_on_cancel():
    from core.child_process import run_in_child

    token = CancelToken()
    gen = run_in_child(_endless, token=token)
    for _ in range(5):
        next(gen)
    t0 = time.monotonic()
    token.cancel()
    with pytest.raises(CancelledError):
        for _ in gen:
            pass
    assert time.monotonic() - t0 < 5


# -- host keys (real sshd) ------------------------------------------------------
def test_host_key_is_shown_then_recorded_only_when_confirmed(tmp_path, sshd):
    known = tmp_path / "known_hosts"
    setup = SiteSetup(
        site="a", server=sshd.url(tmp_path / "ring"), key_file=str(sshd.client_key), known_hosts=str(known)
    )
    probe = probe_host_key(setup)
    assert probe.status == "unknown" and probe.fingerprint.startswith("SHA256:")
    assert probe.key_type == "ssh-ed25519" and probe.fingerprint in probe.describe()
    assert not known.exists()
    trust_host_key(probe)
    assert known.read_text().split()[:3] == sshd.host_key_line.split()
    assert probe_host_key(setup).status == "known"
    # a different key recorded for that host: "changed", and never trusted from here
    other = build_other_known_hosts(tmp_path, sshd)
    changed = probe_host_key(setup.with_(known_hosts=str(other)))
    assert changed.status == "changed" and "CHANGED" in changed.describe()
    with pytest.raises(HostKeyError):
        trust_host_key(changed)
    assert probe_host_key(SiteSetup(site="a", server=str(tmp_path))) is None  # a folder: no key


def build_other_known_hosts(tmp_path: Path, server: SshdServer) -> Path:
    import subprocess

    key = tmp_path / "impostor"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    kind, b64 = key.with_suffix(".pub").read_text().split()[:2]
    path = tmp_path / "known_other"
    path.write_text(f"[{server.host}]:{server.port} {kind} {b64}\n")
    return path


def test_connection_over_sftp_with_wrong_key_says_so(tmp_path, sshd):
    setup = SiteSetup(
        site="a", server=sshd.url(tmp_path / "ring"), key_file=str(sshd.other_key), known_hosts=str(sshd.known_hosts)
    )
    from core.ring.errors import ServerAuthError

    with pytest.raises(ServerAuthError, match="refused the login"):
        check_connection(setup)


def test_user_folders_follow_one_rule(monkeypatch, tmp_path):
    from core.ring.audit import default_audit_path
    from core.user_dirs import config_dir

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("HEMARELAY_CONFIG_DIR", raising=False)
    assert state_dir() == tmp_path / "state" / "hemarelay"
    assert default_audit_path("a") == tmp_path / "state" / "hemarelay" / "ring-audit-a.jsonl"
    assert config_dir() == tmp_path / "config" / "hemarelay"
    monkeypatch.setenv("HEMARELAY_CONFIG_DIR", str(tmp_path / "mine"))
    assert config_dir() == tmp_path / "mine"


def test_approval_is_bound_to_the_mask_that_was_approved(tmp_path):
    """Issue 23: a mask replaced outside the app after approval is no longer approved."""
    import nibabel as nib
    import numpy as np

    folder = tmp_path / "site"
    folder.mkdir()
    for cid in ("001", "002"):
        img = nib.Nifti1Image(np.zeros((4, 4, 3), np.int16), np.eye(4))
        nib.save(img, str(folder / f"ct_{cid}.nii.gz"))
        nib.save(nib.Nifti1Image(np.zeros((4, 4, 3), np.uint8), np.eye(4)), str(folder / f"mask_{cid}.nii.gz"))
    from core.cases.worklist import scan_folder

    wl = scan_folder(folder)
    for label in ("001", "002"):
        wl.set_status(label, CaseStatus.APPROVED, "tester", unopened_ok=True)
    assert [c.case_id for c in approved_cases(folder)] == ["001", "002"]
    mask = folder / "mask_001.nii.gz"
    approved_bytes = mask.read_bytes()
    changed = np.zeros((4, 4, 3), np.uint8)
    changed[1, 1, 1] = 1
    nib.save(nib.Nifti1Image(changed, np.eye(4)), str(mask))  # replaced outside the app
    assert [c.case_id for c in approved_cases(folder)] == ["002"]
    case = scan_folder(folder).find("001")
    assert case.mask_changed and not case.approved_for_training
    mask.write_bytes(approved_bytes)  # the very mask approved: approved again
    assert [c.case_id for c in approved_cases(folder)] == ["001", "002"]
