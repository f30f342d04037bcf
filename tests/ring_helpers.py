"""What the ring tests share: fast retry settings and an SFTP transport to the test sshd."""

from __future__ import annotations

import json
from pathlib import Path

from sshd import SshdServer

from core.progress import NEVER_CANCELLED, run_to_end
from core.ring import turn as T
from core.ring.first_contact import confirm_ring
from core.ring.manifest import MANIFEST, RingConfig, read_manifest
from core.ring.server import init_ring
from core.ring.signing import TurnSigner
from core.ring.transport import parse_server_url
from core.ring.transport_dir import DirectoryTransport
from core.ring.transport_sftp import SftpTransport, SshOptions
from core.ring.trust import TrustStore
from core.site.setup import SiteSetup

# Poll, back off and give up quickly: the tests' servers are local.
FAST = dict(poll_s=0.02, backoff_s=0.02, backoff_max_s=0.1, retry_for_s=5.0, obsolete_grace_s=0.1)
FAST_SFTP = dict(FAST, poll_s=0.05, backoff_s=0.05, backoff_max_s=0.2, retry_for_s=20.0)


# A training turn in seconds: tiny patches, one thread, one epoch.
TINY_TURN = ("patches_per_volume=4", "patch_size=24", "threads=1", "max_epochs=1")


def solo_site(folder: Path, *overrides: str, **kw) -> SiteSetup:
    """One site without a server training the paper's small network from scratch (so
    seconds per turn), one epoch a turn; ``overrides`` go after :data:`TINY_TURN`."""
    return SiteSetup(
        site="solo",
        data_folder=str(folder),
        overrides=TINY_TURN + overrides,
        epochs_per_turn=1,
        preset="cpu-small",
        start_from="scratch",
        **kw,
    )


def ring_turn_args(server: str, site: str, data: Path, *extra: str) -> list[str]:
    """``hemarelay ring turn`` arguments for ``site`` on ``server``, then ``extra``."""
    return ["ring", "turn", "--server", server, "--site", site, "--data", str(data), *extra]


def sftp(server: SshdServer, path: Path, **kw) -> SftpTransport:
    """The ring folder ``path`` on the test sshd, with its client key and known_hosts."""
    opts = dict(identity=server.client_key, known_hosts=server.known_hosts, connect_timeout_s=5.0)
    opts.update(kw)
    return SftpTransport(parse_server_url(server.url(path)), SshOptions(**opts))


class Ring:
    """A signed folder ring (sites a and b unless told); each site with its own key and
    trust folder, where a person at the site confirmed the ring's keys as it was made."""

    def __init__(self, tmp_path: Path, sites=("a", "b"), signed: bool = True, **cfg) -> None:
        self.tmp = tmp_path
        self.signers = {s: TurnSigner.load_or_create(s, tmp_path / "keys" / f"{s}.key") for s in sites}
        self.t = DirectoryTransport(tmp_path / "ring")
        keys = {s: k.public for s, k in self.signers.items()} if signed else {}
        init_ring(self.t, RingConfig(sites=tuple(sites), signers=keys, **cfg))
        if signed:
            for s in sites:
                self.confirm(s)

    def confirm(self, trust: str) -> None:
        """A person at this trust folder's site confirms the ring's keys as the server shows them now."""
        confirm_ring(TrustStore(self.trust(trust)), read_manifest(self.t))

    def opts(self, site: str, trust: str | None = None, **kw) -> T.SiteOptions:
        store = TrustStore(self.trust(trust or site))
        m = read_manifest(self.t)
        if m.config.signers and store.get(m.ring_id) is None:
            self.confirm(trust or site)
        base = dict(signer=self.signers[site], trust_dir=self.trust(trust or site), require_signed=True)
        return T.SiteOptions(site=site, **{**base, **FAST, **kw})

    def trust(self, name: str) -> Path:
        return self.tmp / "trust" / name

    def turn(self, trainer, site: str, **kw) -> T.TurnOutcome:
        return run_to_end(T.take_turn(self.t, trainer, self.opts(site, **kw), NEVER_CANCELLED))

    @property
    def root(self) -> Path:
        return self.t.root

    def manifest_doc(self) -> dict:
        return json.loads((self.root / MANIFEST).read_text())

    def write_manifest(self, doc: dict | bytes) -> None:
        (self.root / MANIFEST).write_bytes(doc if isinstance(doc, bytes) else json.dumps(doc).encode())


class StandIn:
    """Real inception-ds4 weights (so the site sync keeps them as model versions), no
    training: each turn nudges the incoming weights and reports the next scripted loss."""

    model_id = "inception-ds4"

    def __init__(self, losses=(0.9, 0.8, 0.7, 0.6, 0.5, 0.4)) -> None:
        self.losses = list(losses)

    def train_turn(self, inp, token):
        from core.model.architectures import build_network
        from core.progress import Progress
        from core.ring.trainer import TurnResult

        weights = inp.weights or build_network("inception", 4).state_dict()
        yield Progress("Epoch 1", 1, 1)
        new = {k: v + 0.01 * (inp.turn + 1) if v.is_floating_point() else v for k, v in weights.items()}
        return TurnResult(new, None, {"val_loss": self.losses[inp.turn % len(self.losses)]}, 8)
