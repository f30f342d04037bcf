"""The ring's pure parts: URLs, order, convergence rules, weights files, manifest
validation, the privacy scanner."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

from core.errors import ConfigError
from core.ring.codec import (
    decode_optimizer_state,
    decode_weights,
    encode_optimizer_state,
    encode_weights,
    sha256_hex,
    verify_sha256,
)
from core.ring.convergence import judge_turn
from core.ring.errors import CorruptWeightsError, RingStateError
from core.ring.manifest import (
    BestWeights,
    FileRef,
    RingConfig,
    new_manifest,
    parse_manifest,
    round_order,
    site_for_turn,
)
from core.ring.transport import parse_server_url

from privacy_scan import forbidden_terms, scan_server_dir


def test_parse_server_urls(tmp_path):
    loc = parse_server_url("sftp://alice@ring.example.org:2222/srv/ring/")
    assert (loc.kind, loc.user, loc.host, loc.port, loc.path) == (
        "sftp",
        "alice",
        "ring.example.org",
        2222,
        "/srv/ring",
    )
    assert loc.display() == "sftp://alice@ring.example.org:2222/srv/ring"
    home = parse_server_url("sftp://ringhost/~/rings/ich")
    assert (home.user, home.port, home.path) == (None, None, "rings/ich")
    assert home.display() == "sftp://ringhost/~/rings/ich"
    assert parse_server_url(str(tmp_path)).path == str(tmp_path)
    assert parse_server_url(f"file://{tmp_path}").kind == "dir"
    for bad, words in [
        ("http://x/y", "unsupported scheme"),
        ("sftp://host", "ring folder"),
        ("sftp://host:99999/x", "port"),
        ("", "empty"),
    ]:
        with pytest.raises(ConfigError, match=words):
            parse_server_url(bad)


def test_fixed_order_and_seeded_shuffle():
    fixed = RingConfig(sites=("a", "b", "c"))
    assert [site_for_turn(fixed, t) for t in range(7)] == ["a", "b", "c", "a", "b", "c", "a"]
    shuffled = RingConfig(sites=("a", "b", "c", "d"), order="shuffle", seed=7)
    rounds = [round_order(shuffled, r) for r in range(30)]
    assert all(sorted(r) == ["a", "b", "c", "d"] for r in rounds)  # every site once per round
    assert len({tuple(r) for r in rounds}) > 3  # really shuffled
    turns = [site_for_turn(shuffled, t) for t in range(120)]
    assert all(x != y for x, y in zip(turns, turns[1:]))  # never the same site twice in a row
    assert turns == [site_for_turn(replace(shuffled), t) for t in range(120)]  # reproducible
    other_seed = [site_for_turn(replace(shuffled, seed=8), t) for t in range(120)]
    assert other_seed != turns
    assert [site_for_turn(RingConfig(sites=("solo",), order="shuffle"), t) for t in range(3)] == ["solo"] * 3


def test_config_validation():
    with pytest.raises(ConfigError, match="unique"):
        RingConfig(sites=("a", "a")).validate()
    with pytest.raises(ConfigError, match="Site name"):
        RingConfig(sites=("a", "/home/x")).validate()
    with pytest.raises(ConfigError, match="at least one"):
        RingConfig(sites=()).validate()


def _ref(v: int) -> FileRef:
    return FileRef(v, f"weights/v{v:06d}-a-ab12.safetensors", "0" * 64, 10, "a", v - 1)


def _apply(m, site, loss):
    v = judge_turn(m, site, loss, "2026-01-01T00:00:00Z")
    best = BestWeights(loss, _ref(m.turns_done + 1)) if v.global_improved else m.best
    return v, replace(m, turns_done=m.turns_done + 1, best=best, patience_counter=v.global_counter, per_site=v.per_site)


def test_global_patience_counts_every_turn_with_min_delta():
    m = new_manifest(RingConfig(sites=("a", "b"), patience=3, min_delta=1e-4))
    verdicts = []
    for site, loss in [("a", 1.0), ("b", 0.9), ("a", 0.89995), ("b", 0.95), ("a", 0.9)]:
        v, m = _apply(m, site, loss)
        verdicts.append(v)
    assert [v.improved for v in verdicts] == [True, True, False, False, False]  # 0.89995: below min_delta
    assert [v.patience_counter for v in verdicts] == [0, 0, 1, 2, 3]
    assert verdicts[-1].convergence is not None and verdicts[-1].convergence.rule == "global-patience"
    assert all(v.convergence is None for v in verdicts[:-1])
    assert m.best.val_loss == 0.9 and m.per_site["a"].turns == 3 and m.per_site["b"].last_val_loss == 0.95


def test_per_site_rule_waits_for_every_site():
    # Site b's validation split gives higher losses: under the global rule site a's
    # low numbers would end the ring while b still improves on its own scale.
    m = new_manifest(RingConfig(sites=("a", "b"), patience=2, convergence="per-site"))
    seq = [
        ("a", 0.1),
        ("b", 0.9),
        ("a", 0.2),
        ("b", 0.8),
        ("a", 0.2),
        ("b", 0.7),
        ("a", 0.2),
        ("b", 0.7),
        ("a", 0.2),
        ("b", 0.7),
    ]
    rules = []
    for site, loss in seq:
        v, m = _apply(m, site, loss)
        rules.append(v.convergence.rule if v.convergence else None)
    assert rules == [None] * 9 + ["per-site-patience"]
    global_m = new_manifest(RingConfig(sites=("a", "b"), patience=2))
    for i, (site, loss) in enumerate(seq):  # noqa: B007 - i is checked after the loop
        v, global_m = _apply(global_m, site, loss)
        if v.convergence:
            break
    assert i == 2 and v.convergence.rule == "global-patience"  # after 3 turns, b still improving


def test_max_turns_stops_the_ring():
    m = new_manifest(RingConfig(sites=("a",), max_turns=2, patience=10))
    v, m = _apply(m, "a", 1.0)
    assert v.convergence is None
    v, m = _apply(m, "a", 0.5)
    assert v.convergence.rule == "max-turns"


def test_weights_and_optimizer_roundtrip_without_pickle():
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1))
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    net(torch.randn(5, 4)).sum().backward()
    opt.step()
    data = encode_weights(net.state_dict(), {"version": "3"})
    back = decode_weights(data, "w")
    assert all(torch.equal(back[k], v) for k, v in net.state_dict().items())
    odata = encode_optimizer_state(opt.state_dict(), {"version": "3"})
    assert b"pickle" not in odata and odata[8:9] == b"{"
    state = decode_optimizer_state(odata, "o")
    net2 = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1))
    opt2 = torch.optim.Adam(net2.parameters())
    opt2.load_state_dict(state)
    assert opt2.param_groups[0]["lr"] == 3e-3 and opt2.param_groups[0]["betas"] == (0.9, 0.999)
    for k in ("exp_avg", "exp_avg_sq", "step"):
        assert torch.equal(opt2.state_dict()["state"][2][k], opt.state_dict()["state"][2][k])
    verify_sha256(data, sha256_hex(data), "w")
    broken = bytearray(data)
    broken[-1] ^= 0xFF
    with pytest.raises(CorruptWeightsError, match="corrupt.*sha256"):
        verify_sha256(bytes(broken), sha256_hex(data), "weights/v000003-a-1.safetensors")
    with pytest.raises(CorruptWeightsError, match="not a readable"):
        decode_weights(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}", "w")


def test_manifest_roundtrip_and_validation():
    m = new_manifest(RingConfig(sites=("a", "b"), order="shuffle", seed=3, max_turns=9))
    back = parse_manifest(m.to_bytes(), "manifest.json")
    assert back == m
    d = json.loads(m.to_bytes())
    d["config"]["sites"] = ["a", "../etc"]
    with pytest.raises(RingStateError, match="not a valid ring manifest"):
        parse_manifest(json.dumps(d).encode(), "manifest.json")
    d = json.loads(m.to_bytes())
    d["weights"] = {"version": 1, "file": "/etc/passwd", "sha256": "0" * 64, "size": 1, "site": "a", "turn": 0}
    with pytest.raises(RingStateError, match="unexpected file name"):
        parse_manifest(json.dumps(d).encode(), "manifest.json")
    with pytest.raises(RingStateError):
        parse_manifest(b'{"format": "hemarelay-ring/1"', "manifest.json")


def test_privacy_scanner_flags_what_must_not_leave(tmp_path):
    site = tmp_path / "site-a" / "train"
    site.mkdir(parents=True)
    for name in ("ct_049.nii.gz", "mask_049.nii.gz", "ct_117.nii.gz"):
        (site / name).write_bytes(b"x")
    terms = forbidden_terms(tmp_path / "site-a")
    assert {"049", "117", "ct_049.nii.gz", str((site / "ct_049.nii.gz").resolve())} <= terms

    ring = tmp_path / "ring"
    (ring / "weights").mkdir(parents=True)
    net = torch.nn.Linear(3, 2)
    shapes = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    m = new_manifest(RingConfig(sites=("a", "b")))
    (ring / "manifest.json").write_bytes(m.to_bytes())
    (ring / "weights/v000001-a-ab12.safetensors").write_bytes(encode_weights(net.state_dict(), {"site": "a"}))
    assert scan_server_dir(ring, terms, shapes) == []
    # A sha256 or version number containing "049" is not a case id.
    (ring / "weights/v000049-a-049abc.safetensors").write_bytes(_unchecked_weights(net.state_dict(), {"x": "0.049"}))
    assert scan_server_dir(ring, terms, shapes) == []

    (ring / "weights/v000002-a-cd34.safetensors").write_bytes(
        _unchecked_weights({**net.state_dict(), "slice": torch.zeros(64, 64)}, {"case": "ct_117"})
    )
    (ring / "notes.txt").write_text("hello")
    d = json.loads(m.to_bytes())
    d["history"][0]["detail"] = "trained on case 049 from /data/site-a"
    (ring / "manifest.json").write_text(json.dumps(d))
    problems = {(f.file, f.problem.split(" ")[0]) for f in scan_server_dir(ring, terms, shapes)}
    assert ("notes.txt", "not") in problems
    assert ("weights/v000002-a-cd34.safetensors", "tensor") in problems  # the 64x64 "slice"
    found = " ".join(f.problem for f in scan_server_dir(ring, terms, shapes))
    assert "'049'" in found and "'117'" in found and "'slice' is not a weight" in found


def _unchecked_weights(state, meta) -> bytes:
    """A weights file as a careless or hostile site could write it: the ring's encoder
    refuses metadata outside its allow-list, so this bypasses it."""
    from safetensors.torch import save

    return save({k: v.contiguous() for k, v in state.items()}, metadata={"format": "hemarelay-weights/1", **meta})
