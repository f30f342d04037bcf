"""The ring under attack over SFTP, against a real OpenSSH sshd (tests/sshd.py):
links planted in the ring folder, the server switching its host key type, and
the SSH key handling a hospital needs (passphrases, key-file permissions)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import paramiko
import pytest
import torch

from core.progress import NEVER_CANCELLED, run_to_end
from core.ring import turn as T
from core.ring.errors import HostKeyError, ServerAuthError, UnsafeServerPathError
from core.ring.first_contact import confirm_ring
from core.ring.lease import read_lease
from core.ring.manifest import RingConfig
from core.ring.server import init_ring, read_manifest
from core.ring.signing import TurnSigner
from core.ring.toy import ToyTrainer
from core.ring.transport_sftp import SftpTransport
from core.ring.trust import TrustStore

from ring_helpers import FAST_SFTP, sftp

torch.set_num_threads(2)


def _signed_ring(t: SftpTransport, tmp_path: Path) -> dict[str, TurnSigner]:
    """A signed ring of sites a and b, whose keys a person at each site confirmed."""
    keys = {s: TurnSigner.load_or_create(s, tmp_path / "keys" / f"{s}.key") for s in ("a", "b")}
    m = init_ring(t, RingConfig(sites=("a", "b"), signers={s: k.public for s, k in keys.items()}))
    for s in keys:
        confirm_ring(TrustStore(tmp_path / "trust" / s), m)
    return keys


def _opts(keys, site: str, tmp_path: Path) -> T.SiteOptions:
    return T.SiteOptions(site, signer=keys[site], trust_dir=tmp_path / "trust" / site, require_signed=True, **FAST_SFTP)


def test_links_in_the_ring_folder_are_not_followed_over_sftp(sshd, tmp_path, toy_sites):
    ring = tmp_path / "ring"
    victim = tmp_path / "server-account-files"
    victim.mkdir()
    for i in range(30):
        (victim / f"broken-2026{i:04d}T000000Z-a-{i:06x}.json").write_text("the account's own file")
    with sftp(sshd, ring) as t:
        keys = _signed_ring(t, tmp_path)
        run_to_end(T.take_turn(t, ToyTrainer(toy_sites["a"]), _opts(keys, "a", tmp_path), NEVER_CANCELLED))
        (ring / "leases").symlink_to(victim)  # a member replaces leases/ by a link
        out = run_to_end(T.take_turn(t, ToyTrainer(toy_sites["b"]), _opts(keys, "b", tmp_path), NEVER_CANCELLED))
        assert out.trained
        assert len(list(victim.iterdir())) == 30  # prune deleted nothing over there
        # The weights file the manifest names becomes a link to the account's private key.
        secret = tmp_path / "id_ed25519"
        secret.write_bytes(b"-----BEGIN OPENSSH PRIVATE KEY-----")
        w = ring / read_manifest(t).weights.file
        w.unlink()
        w.symlink_to(secret)
        with pytest.raises(UnsafeServerPathError, match="symbolic link"):
            run_to_end(T.take_turn(t, ToyTrainer(toy_sites["a"]), _opts(keys, "a", tmp_path), NEVER_CANCELLED))
        assert read_lease(t) is None


def test_a_host_key_type_switch_is_a_change_not_a_first_contact(sshd, tmp_path):
    from core.site.hostkey import probe_host_key
    from core.site.setup import SiteSetup

    rsa = paramiko.RSAKey.generate(2048)
    known = tmp_path / "known_hosts"
    known.write_text(f"[{sshd.host}]:{sshd.port} ssh-rsa {rsa.get_base64()}\n")  # the RSA key on record
    before = known.read_text()
    with pytest.raises(HostKeyError, match="CHANGED"):
        sftp(sshd, tmp_path / "ring", known_hosts=known, trust_host_key=True).connect()
    assert known.read_text() == before  # never recorded, even with "trust"
    probe = probe_host_key(
        SiteSetup(site="a", server=sshd.url(tmp_path / "ring"), key_file=str(sshd.client_key), known_hosts=str(known))
    )
    assert probe is not None and probe.status == "changed" and "CHANGED" in probe.describe()


def test_passphrase_protected_keys_work_and_loose_key_files_are_refused(sshd_factory, tmp_path):
    server = sshd_factory()
    key = tmp_path / "id_pass"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "s3cret", "-f", str(key)], check=True)
    with open(server.workdir / "authorized_keys", "a") as fh:
        fh.write(key.with_suffix(".pub").read_text())
    with pytest.raises(ServerAuthError, match="passphrase"):
        sftp(server, tmp_path / "ring", identity=key).connect()
    t = sftp(server, tmp_path / "ring", identity=key, passphrase="s3cret")
    t.connect()
    t.makedirs("")
    t.close()
    loose = tmp_path / "loose_key"
    loose.write_bytes(server.client_key.read_bytes())
    os.chmod(loose, 0o644)
    with pytest.raises(ServerAuthError, match="can be read by other users"):
        sftp(server, tmp_path / "ring", identity=loose).connect()
    # The turn-signing key follows the same rules.
    signing = tmp_path / "sign.key"
    TurnSigner.load_or_create("a", signing, passphrase="pw")
    with pytest.raises(Exception, match="passphrase"):
        TurnSigner.load("a", signing)
    assert TurnSigner.load("a", signing, "pw").public.startswith("ssh-ed25519 ")
    os.chmod(signing, 0o640)
    with pytest.raises(Exception, match="can be read by other users"):
        TurnSigner.load("a", signing, "pw")
