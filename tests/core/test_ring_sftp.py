"""The ring over SFTP against a real OpenSSH sshd on 127.0.0.1 (no transport mocks):
security refusals, faults, and site processes running a ring together."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from sshd import SshdServer

from core.cli import main as cli_main
from core.progress import NEVER_CANCELLED, run_to_end
from core.ring import turn as T
from core.ring.codec import sha256_hex
from core.ring.errors import (
    CorruptWeightsError,
    HostKeyError,
    ServerAuthError,
    ServerPermissionError,
    ServerUnreachableError,
)
from core.ring.lease import Lease, new_lease, read_lease, try_acquire
from core.ring.manifest import LEASE, RingConfig, RingEvent, parse_utc, read_manifest
from core.ring.server import init_ring
from core.ring.signing import TurnSigner
from core.ring.toy import ToyTrainer
from core.ring.transport import parse_server_url
from core.ring.transport_sftp import SftpTransport, SshOptions

from privacy_scan import forbidden_terms, scan_server_dir
from ring_helpers import FAST_SFTP, ring_turn_args, sftp

torch.set_num_threads(2)
ROOT = Path(__file__).resolve().parents[2]


def site_cmd(server: SshdServer, ring: Path, site: str, data: Path, audit: Path, *extra: str) -> list[str]:
    """A site's ``ring turn`` process, signing with its key from :func:`signers` (beside ``audit``)."""
    keys = audit.parent / "keys"
    return [
        sys.executable,
        "-m",
        "core",
        *ring_turn_args(server.url(ring), site, data),
        "--trainer",
        "toy",
        "--identity",
        str(server.client_key),
        "--known-hosts",
        str(server.known_hosts),
        "--poll",
        "0.1",
        "--retry-for",
        "30",
        "--audit-log",
        str(audit),
        "--signing-key",
        str(keys / f"{site}.key"),
        "--trust-dir",
        str(keys / f"trust-{site}"),
        *(["--trust-signers", str(keys / "signers.txt")] if (keys / "signers.txt").is_file() else []),
        *extra,
    ]


def signers(folder: Path, sites) -> dict[str, str]:
    """Each site's signing key, created in ``folder/keys`` as ``site_cmd`` uses them, and the
    coordinator's signers file (``keys/signers.txt``) each site's process trusts at first contact."""
    keys = {s: TurnSigner.load_or_create(s, folder / "keys" / f"{s}.key").public for s in sites}
    (folder / "keys" / "signers.txt").write_text("".join(f"{s} {k}\n" for s, k in keys.items()))
    return keys


def spawn(cmd: list[str]) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(p: subprocess.Popen, timeout: float = 90) -> tuple[int, str, str]:
    out, err = p.communicate(timeout=timeout)
    return p.returncode, out, err


# -- security and reachability -------------------------------------------------


def test_sftp_primitives_on_openssh(sshd, tmp_path):
    with sftp(sshd, tmp_path / "ring") as t:
        t.makedirs("sub")
        assert t.create_exclusive("sub/lock", b"one") and not t.create_exclusive("sub/lock", b"two")
        assert t.read_bytes("sub/lock") == b"one"
        t.chunk_bytes = 1000
        payload = os.urandom(4500)
        steps = list(t.iter_write_atomic("sub/blob", payload))
        assert steps == [1000, 2000, 3000, 4000, 4500] and (tmp_path / "ring/sub/blob").read_bytes() == payload
        t.write_atomic("sub/blob", b"new")  # replaces atomically
        assert t.read_bytes("sub/blob") == b"new" and [f.name for f in t.list_dir("sub")] == ["blob", "lock"]
        t.rename("sub/blob", "sub/moved")
        assert t.stat("sub/blob") is None and t.stat("sub/moved").size == 3
        t.delete("sub/moved")
        t.delete("sub/moved")  # absent is fine
        with pytest.raises(FileNotFoundError):
            t.read_bytes("sub/moved")
        assert t.list_dir("nothing-here") == []


def test_unknown_host_key_is_refused_unless_trusted(sshd, tmp_path):
    known = tmp_path / "known_hosts"
    known.write_text("")
    with pytest.raises(HostKeyError, match=r"not in .*known_hosts.*SHA256:.*--trust-host-key"):
        sftp(sshd, tmp_path, known_hosts=known).connect()
    assert known.read_text() == ""
    with sftp(sshd, tmp_path, known_hosts=known, trust_host_key=True) as t:
        t.connect()
    assert known.read_text().strip() == sshd.host_key_line  # recorded, OpenSSH format
    with sftp(sshd, tmp_path, known_hosts=known) as t:  # trusted from now on
        t.connect()


def test_changed_host_key_is_refused_even_with_trust(sshd, tmp_path):
    impostor = tmp_path / "impostor"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(impostor)], check=True)
    key_type, key_b64 = impostor.with_suffix(".pub").read_text().split()[:2]
    known = tmp_path / "known_hosts"
    known.write_text(f"[{sshd.host}]:{sshd.port} {key_type} {key_b64}\n")
    for trust in (False, True):
        with pytest.raises(HostKeyError, match=r"has CHANGED.*ssh-keygen -R"):
            sftp(sshd, tmp_path, known_hosts=known, trust_host_key=trust).connect()


def test_wrong_client_key_missing_key_and_unreachable_server(sshd, tmp_path):
    with pytest.raises(ServerAuthError, match=r"refused the login of user 'root' with .*other_ed25519"):
        sftp(sshd, tmp_path, identity=sshd.other_key).connect()
    with pytest.raises(ServerAuthError, match="does not exist"):
        sftp(sshd, tmp_path, identity=tmp_path / "no-key").connect()
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    loc = parse_server_url(f"sftp://root@127.0.0.1:{port}/srv/ring")
    t = SftpTransport(loc, SshOptions(identity=sshd.client_key, known_hosts=sshd.known_hosts))
    with pytest.raises(ServerUnreachableError, match=rf"127.0.0.1:{port}: connection refused"):
        t.connect()


def test_ssh_config_alias(sshd, tmp_path):
    cfg = tmp_path / "ssh_config"
    cfg.write_text(
        f"Host ringserver\n  HostName {sshd.host}\n  Port {sshd.port}\n  User root\n"
        f"  IdentityFile {sshd.client_key}\n  UserKnownHostsFile {sshd.known_hosts}\n"
    )
    t = SftpTransport(parse_server_url(f"sftp://ringserver{tmp_path}/ring"), SshOptions(ssh_config=cfg))
    with t:
        init_ring(t, RingConfig(sites=("a",)))
    assert (tmp_path / "ring" / "manifest.json").exists()


def test_permission_denied_on_the_ring_folder(sshd_factory, tmp_path):
    ro = sshd_factory(read_only=True)  # internal-sftp -R: the server refuses every write
    (tmp_path / "ring").mkdir()
    with sftp(ro, tmp_path / "ring") as t:
        with pytest.raises(ServerPermissionError, match=r"Permission denied: cannot create .*ring"):
            init_ring(t, RingConfig(sites=("a",)))


def test_cli_errors_are_one_line(sshd, tmp_path, capsys):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    rc = cli_main(
        [
            "ring",
            "status",
            "--server",
            sshd.url(tmp_path),
            "--identity",
            str(sshd.client_key),
            "--known-hosts",
            str(empty),
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "--trust-host-key" in err[0]
    rc = cli_main(
        [
            "ring",
            "status",
            "--server",
            sshd.url(tmp_path / "none"),
            "--identity",
            str(sshd.client_key),
            "--known-hosts",
            str(sshd.known_hosts),
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "No ring at sftp://root@127.0.0.1" in err[0]


# -- faults ---------------------------------------------------------------------


def test_server_outage_during_upload_is_retried_and_nothing_partial_is_published(sshd_factory, tmp_path, toy_sites):
    server = sshd_factory()
    ring = tmp_path / "ring"
    t = sftp(server, ring)
    init_ring(t, RingConfig(sites=("a",)))
    t.chunk_bytes = 64 * 1024
    trainer = ToyTrainer(toy_sites["a"], hidden=20_000)  # ~0.8 MB of weights: 13 chunks
    gen = T.take_turn(t, trainer, T.SiteOptions("a", **FAST_SFTP), NEVER_CANCELLED)
    retries = 0
    outage_checked = False
    while True:
        try:
            ev = next(gen)
        except StopIteration as stop:
            outcome = stop.value
            break
        if ev.stage == T.STAGE_UPLOAD and 0 < ev.done < ev.total and server.running and not outage_checked:
            server.stop()  # the server dies in the middle of the upload
            outage_checked = True
        elif ev.stage == T.STAGE_RETRY:
            retries += 1
            visible = [p.name for p in (ring / "weights").iterdir()]
            assert all(".tmp-" in n for n in visible)  # only a partial temp file, never referenced
            assert json.loads((ring / "manifest.json").read_text())["weights"] is None
            if retries == 3:
                server.start()  # back after a few failed reconnections
    assert outage_checked and retries >= 3
    m = read_manifest(t)
    assert outcome.trained and m.turns_done == 1
    assert sha256_hex((ring / m.weights.file).read_bytes()) == m.weights.sha256
    assert sorted(p.name for p in (ring / "weights").iterdir()) == [m.weights.file.split("/")[1]]
    assert not (ring / LEASE).exists()
    t.close()


def test_corrupt_weights_on_the_server_are_refused(sshd, tmp_path, toy_sites):
    ring = tmp_path / "ring"
    with sftp(sshd, ring) as t:
        init_ring(t, RingConfig(sites=("a", "b")))
        run_to_end(T.take_turn(t, ToyTrainer(toy_sites["a"]), T.SiteOptions("a", **FAST_SFTP), NEVER_CANCELLED))
        f = ring / read_manifest(t).weights.file
        f.write_bytes(f.read_bytes()[:-1] + b"\x00")
        with pytest.raises(CorruptWeightsError, match=r"sftp://root@127.0.0.1:\d+/.*weights/v000001.*corrupt"):
            run_to_end(T.take_turn(t, ToyTrainer(toy_sites["b"]), T.SiteOptions("b", **FAST_SFTP), NEVER_CANCELLED))
        assert read_lease(t) is None


def _race(url: str, key: str, known: str, site: str, barrier, results) -> None:
    t = SftpTransport(parse_server_url(url), SshOptions(identity=Path(key), known_hosts=Path(known)))
    t.connect()
    lease = new_lease(site, 0, 60.0)
    barrier.wait(timeout=30)
    results.put((site, try_acquire(t, lease), lease.token))
    t.close()


def test_exclusive_lease_under_contention(sshd, tmp_path):
    ring = tmp_path / "ring"
    ring.mkdir()
    ctx = multiprocessing.get_context("fork")
    for _ in range(3):
        (ring / LEASE).unlink(missing_ok=True)
        barrier, results = ctx.Barrier(4), ctx.Queue()
        procs = [
            ctx.Process(
                target=_race,
                args=(sshd.url(ring), str(sshd.client_key), str(sshd.known_hosts), f"s{i}", barrier, results),
            )
            for i in range(4)
        ]
        for p in procs:
            p.start()
        got = [results.get(timeout=60) for _ in procs]
        for p in procs:
            p.join(timeout=30)
        winners = [(site, token) for site, won, token in got if won]
        assert len(winners) == 1, got
        assert Lease.parse((ring / LEASE).read_bytes()).token == winners[0][1]


def test_site_processes_run_a_ring_to_convergence_one_turn_at_a_time(sshd, tmp_path, toy_sites):
    """Site a (started twice, as by mistake) and site b start at the same moment:
    only one process ever trains at a time, turns alternate a, b, and every
    process stops when the ring converges."""
    ring = tmp_path / "ring"
    with sftp(sshd, ring) as t:
        init_ring(
            t, RingConfig(sites=("a", "b"), patience=3, max_turns=8, signers=signers(tmp_path, ("a", "b")))
        )  # signing on
    names = ["a", "a2", "b"]
    procs = {
        n: spawn(site_cmd(sshd, ring, n[0], toy_sites[n[0]], tmp_path / f"audit-{n}.jsonl", "--wait")) for n in names
    }
    results = {n: finish(p) for n, p in procs.items()}
    for n, (rc, out, err) in results.items():
        assert rc == 0, f"process {n}: {err[-2000:]}"
        assert "The ring has" in out  # every process stops: nobody polls forever
    with sftp(sshd, ring) as t:
        m = read_manifest(t)
    assert m.status in ("converged", "stopped") and m.convergence is not None
    sites = [r.site for r in m.turn_records]
    assert sites == ["a", "b"] * (len(sites) // 2) + ["a"] * (len(sites) % 2)
    assert [r.parent_version for r in m.turn_records] == list(range(len(sites)))
    from core.ring.signing import config_sha256, verify_chain
    from core.ring.trust import Pin

    verified = verify_chain(m, Pin.of(m.config, config_sha256(m.config)))
    assert verified.problem is None and len(verified.records) == len(sites)  # every turn signed, one chain
    spans = [(parse_utc(r.started_at), parse_utc(r.finished_at)) for r in m.turn_records]
    assert all(end <= nxt_start for (_, end), (nxt_start, _) in zip(spans, spans[1:]))  # never two at once
    published = {n: results[n][1].count("published weights version") for n in names}
    assert published["a"] + published["a2"] == sites.count("a") and published["b"] == sites.count("b")
    assert not any(isinstance(h, RingEvent) and h.event == "lease_break" for h in m.history)
    terms = forbidden_terms(toy_sites["a"]) | forbidden_terms(toy_sites["b"])
    shapes = {k: tuple(v.shape) for k, v in ToyTrainer(toy_sites["a"]).build(0).state_dict().items()}
    assert scan_server_dir(ring, terms, shapes) == []
    audit = [json.loads(x) for x in (tmp_path / "audit-b.jsonl").read_text().splitlines()]
    assert {e["action"] for e in audit} >= {"lease", "download", "upload", "publish", "release"}


def test_site_killed_while_holding_the_lease(sshd, tmp_path, toy_sites):
    ring = tmp_path / "ring"
    with sftp(sshd, ring) as t:
        init_ring(t, RingConfig(sites=("a", "b"), lease_ttl_s=600))
    victim = spawn(
        site_cmd(
            sshd,
            ring,
            "a",
            toy_sites["a"],
            tmp_path / "audit-a.jsonl",
            "--epochs-per-turn",
            "100000",
            "--max-epochs-per-turn",
            "100000",
            "--allow-unsigned",
        )
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if (ring / LEASE).exists() and json.loads((ring / "manifest.json").read_text())["holder"]:
            break
        time.sleep(0.05)
    else:
        victim.kill()
        pytest.fail(f"site a never took the lease: {victim.communicate()[1][-1500:]}")
    os.kill(victim.pid, signal.SIGKILL)  # dies mid-turn, lease on the server
    victim.wait()
    assert (ring / LEASE).exists()
    # Site a, restarted on the same machine, need not wait out its own dead 600 s lease:
    # the lease is from a process of this machine that has ended. (Another site may take a
    # turn in a's place only once a's lease has expired: that is its evidence.)
    with sftp(sshd, ring) as t:
        start = time.monotonic()
        out = run_to_end(T.take_turn(t, ToyTrainer(toy_sites["a"]), T.SiteOptions("a", **FAST_SFTP), NEVER_CANCELLED))
        assert out.trained and time.monotonic() - start < 30
        m = read_manifest(t)
    assert m.turns_done == 1 and m.turn_records[0].site == "a" and m.turn_records[0].in_place_of is None
    breaks = [h for h in m.history if isinstance(h, RingEvent) and h.event == "lease_break"]
    assert len(breaks) == 1 and "has ended" in breaks[0].detail
    assert m.next_site == "b"  # turn 2 in fixed order a, b
