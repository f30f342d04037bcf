"""The ring as this site sees it, and new weights brought home.

:func:`sync_once` is one poll of the background sync: connect, read the
manifest and the lease, download every weights version the server still
keeps (latest, best, the last turns') of turns whose signed records verified and
that this site has not kept yet (size-capped and sha256-checked against those
records, and labelled by them), keep them in the
:class:`~core.site.versions.ModelStore`. It never uses them: choosing a
version is the user's decision, after seeing its local scores.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Generator

from ..errors import HemaRelayError
from ..progress import NEVER_CANCELLED, CancelToken, Progress
from ..ring.errors import RingStateError, ServerUnreachableError
from ..ring.first_contact import FirstContact, first_contact, pinned_or_own
from ..ring.lease import LeaseView, read_lease
from ..ring.manifest import Manifest, TurnRecord, read_manifest
from ..ring.server import download_verified, kept_refs
from ..ring.signing import RingTrustError, Verified, verify_and_record
from ..ring.transport import Transport
from ..ring.trust import TrustStore
from ..training.ring_turn import is_hematoma_model
from .setup import SiteSetup, ensure_local_ring, open_site_transport, site_signer, trust_dir
from .versions import ModelStore, ModelVersion

STAGE_SYNC = "Checking the ring server"
STAGE_FETCH = "Downloading new weights"


@dataclass(frozen=True)
class SiteRow:
    site: str
    turns: int
    last_trained: str  # finished_at of its last turn, "" when never
    last_val_loss: float | None
    next: bool  # the ring's next turn is this site's
    holding: bool  # holds the lease (training now)


@dataclass(frozen=True)
class SiteView:
    """One reading of the ring from this site."""

    site: str
    where: str
    manifest: Manifest
    lease: LeaseView | None
    checked_at: float = field(default_factory=time.time)

    @property
    def member(self) -> bool:
        return self.site in self.manifest.config.sites

    @property
    def holder(self) -> str | None:
        if self.lease is None or self.lease.lease is None or self.lease.lease.turn < self.manifest.turns_done:
            return None
        return self.lease.lease.site

    @property
    def my_turn(self) -> bool:
        return self.manifest.status == "running" and self.member and self.manifest.next_site == self.site

    @property
    def state(self) -> str:
        """ "converged", "stopped", "not a member", "training" (this site holds the
        lease), "my turn", or "waiting"."""
        m = self.manifest
        if m.status != "running":
            return m.status
        if not self.member:
            return "not a member"
        if self.holder == self.site:
            return "training"
        return "my turn" if self.my_turn else "waiting"

    def describe(self) -> str:
        m = self.manifest
        if m.status != "running":
            best = f"; best weights v{m.best.weights.version}" if m.best else ""
            return f"The ring has {m.status} after {m.turns_done} turns{best}."
        if not self.member:
            return f"Site {self.site} is not a member of this ring ({', '.join(m.config.sites)})."
        who = self.holder
        now = f"site {who} is training" if who else f"site {m.next_site} is next"
        order = (
            " → ".join(m.config.sites)
            if m.config.order == "fixed"
            else f"{', '.join(m.config.sites)} (order shuffled each round)"
        )
        return f"Round {m.round + 1}, turn {m.turns_done + 1}: {now}. Sites: {order}."

    def rows(self) -> list[SiteRow]:
        m = self.manifest
        last: dict[str, TurnRecord] = {}
        counts: dict[str, int] = {}
        for r in m.turn_records:
            last[r.site] = r
            counts[r.site] = counts.get(r.site, 0) + 1
        nxt = m.next_site if m.status == "running" else None
        return [
            SiteRow(
                s,
                counts.get(s, 0),
                last[s].finished_at if s in last else "",
                float(last[s].metrics["val_loss"]) if s in last and "val_loss" in last[s].metrics else None,
                s == nxt,
                self.holder == s,
            )
            for s in m.config.sites
        ]


@dataclass(frozen=True)
class RefusedVersion:
    """Weights this site will not keep or train from, and why (signing.py)."""

    version: int | None  # None: the whole ring (a changed key, an unsigned ring, a rollback)
    site: str | None
    kind: str  # "signature", "substitution", "rollback", "fork", "key-change", "unsigned"
    reason: str  # one sentence for people

    def describe(self) -> str:
        what = f"v{self.version} from site {self.site}" if self.version is not None else "The ring"
        return f"{what} refused ({self.kind}): {self.reason}"


@dataclass(frozen=True)
class SyncResult:
    view: SiteView
    new_versions: tuple[ModelVersion, ...] = ()
    problems: tuple[str, ...] = ()  # versions that could not be brought home (tried again next time)
    refused: tuple[RefusedVersion, ...] = ()  # versions (or the ring) failing the signature checks
    first_contact: FirstContact | None = None  # a signed ring nobody here confirmed: ask a person


def read_view(setup: SiteSetup, t: Transport) -> SiteView:
    t.connect()
    m = ensure_local_ring(setup, t) if setup.is_local else read_manifest(t)
    return SiteView(setup.site, t.describe(), m, read_lease(t))


def sync_once(
    setup: SiteSetup, token: CancelToken = NEVER_CANCELLED, download: bool = True, store_root=None
) -> Generator[Progress, None, SyncResult]:
    """Read the ring; bring home the weights of verified turns this site has not kept yet."""
    yield Progress(STAGE_SYNC, 0, 0, setup.location().display())
    with open_site_transport(setup) as t:
        view = read_view(setup, t)
        m = view.manifest
        new: list[ModelVersion] = []
        problems: list[str] = []
        check = check_ring(setup, m)
        if download and check.verified is not None and is_hematoma_model(m.model_id):  # a toy ring: nothing to predict
            store = ModelStore.for_ring(m.ring_id, store_root)
            on_server = {ref.file for ref in kept_refs(m)}
            best = check.verified.tally.best if check.verified.tally else m.best
            # Only what verified comes home, labelled and size-capped by its own signed record.
            for r in reversed(check.verified.records):
                token.raise_if_cancelled()
                if r.weights_file not in on_server or store.has(r.weights_sha256):
                    continue
                yield Progress(STAGE_FETCH, 0, r.weights_size, f"version {r.version} from site {r.site}")
                try:
                    data = download_verified(t, r.weights_ref(), "weights")
                    new.append(store.add(data, r, m, best is not None and best.weights.version == r.version))
                except RingStateError as exc:
                    if "missing on the server" not in str(exc):  # else pruned since it was read: gone for good
                        problems.append(f"Weights v{r.version} from site {r.site} were not kept: {exc}")
                except ServerUnreachableError:
                    raise
                except HemaRelayError as exc:  # one bad file must not stop the sync
                    problems.append(f"Weights v{r.version} from site {r.site} were not kept: {exc}")
    return SyncResult(view, tuple(new), tuple(problems), check.refused, check.first_contact)


@dataclass(frozen=True)
class RingCheck:
    verified: Verified | None  # None: the whole ring is refused (or not confirmed yet)
    refused: tuple[RefusedVersion, ...] = ()
    first_contact: FirstContact | None = None


def check_ring(setup: SiteSetup, m: Manifest) -> RingCheck:
    """The ring's history checked against this site's pin and verified head: the
    verified part, what was refused, and, for a signed ring nobody here confirmed,
    what a person must confirm (nothing is pinned here)."""
    store = TrustStore(trust_dir(setup))
    try:
        pinned_or_own(m, store, site_signer(setup) if setup.is_local else None)
        v = verify_and_record(m, store, not (setup.allow_unsigned or setup.is_local))
    except RingTrustError as exc:
        contact = first_contact(m) if exc.kind == "unpinned" else None
        return RingCheck(None, (RefusedVersion(exc.version, exc.site, exc.kind, str(exc)),), contact)
    if v.problem is None:
        return RingCheck(v)
    p = v.problem
    refused = [RefusedVersion(p.version, p.site, p.kind, str(p))]
    # Every later version hangs on the refused one: name them too, so none looks merely missing.
    for r in m.turn_records[len(v.records) + 1 :]:
        refused.append(RefusedVersion(r.version, r.site, p.kind, f"it follows refused version {p.version}."))
    if p.kind in ("rollback", "fork"):
        return RingCheck(None, tuple(refused))
    return RingCheck(v, tuple(refused))
