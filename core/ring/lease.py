"""The ring's lock: ``lease.json``, created exclusively by the site taking a turn.

A lease names the site, the turn it was taken for and an expiry; the holder
renews it while training. A waiting site may break it when:

- its expiry (holder's clock) passed more than the ring's clock-skew tolerance ago,
- or the waiter itself has watched the same lease content, unrenewed, for the
  lease time plus that tolerance (this needs no clock agreement at all),
- or it was taken by a process of this very machine that no longer exists (a
  restarted site need not wait out its own dead lease),
- or it is left over from a turn the manifest already records as done (a
  crash between publishing and releasing), after a short grace.

Breaking renames the lease into ``leases/`` (so only one breaker wins) and the
breaker then takes a fresh lease like anybody else. A holder that renews and
finds someone else's lease has lost it (:class:`LeaseLostError`); the manifest
compare-and-swap is the last guard against a stalled holder publishing late.
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from ..lock_files import process_alive
from .errors import LeaseLostError, ServerFileTooLargeError
from .manifest import BROKEN_LEASES_DIR, LEASE, Manifest, read_manifest
from .records import Lease as Lease  # the lease's fields and format live with the other records
from .records import parse_utc, plus_seconds, utc_now
from .transport import Transport

if TYPE_CHECKING:
    from .keys import TurnSigner


def holder_id() -> str:
    """This machine, as an opaque hash (the hostname itself is not sent)."""
    boot = ""
    for p in ("/etc/machine-id", "/proc/sys/kernel/random/boot_id"):
        try:
            boot += Path(p).read_text().strip()
        except OSError:
            pass
    return hashlib.sha256(f"{socket.gethostname()}|{boot}".encode()).hexdigest()[:16]


MAX_LEASE_BYTES = 64 << 10  # a lease is about 400 bytes


def new_lease(site: str, turn: int, ttl_s: float, signer: "TurnSigner | None" = None, ring_id: str = "") -> Lease:
    """A fresh lease for ``turn``; signed for ``ring_id`` when ``signer`` is given (a signed ring)."""
    now = utc_now()
    lease = Lease(site, uuid.uuid4().hex, turn, holder_id(), os.getpid(), now, now, plus_seconds(now, ttl_s), ttl_s)
    return lease.signed_by(signer, ring_id)


@dataclass(frozen=True)
class LeaseView:
    raw: bytes
    lease: Lease | None  # None: unreadable (empty or partial)


@dataclass(frozen=True)
class Verdict:
    breakable: bool
    reason: str  # why it may (or may not yet) be broken, for people and the history


class LeaseWatch:
    """How long a waiting site has seen the same lease content (its own clock)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._raw: bytes | None = None
        self._since = 0.0

    def unchanged_for(self, raw: bytes) -> float:
        now = self.clock()
        if raw != self._raw:
            self._raw, self._since = raw, now
        return now - self._since


def judge_lease(view: LeaseView, m: Manifest, watch: LeaseWatch, obsolete_grace_s: float) -> Verdict:
    """May a waiting site break this lease now?"""
    cfg = m.config
    seen = watch.unchanged_for(view.raw)
    lease = view.lease
    patience_s = cfg.lease_ttl_s + cfg.clock_skew_s
    if lease is None:
        if seen >= patience_s:
            return Verdict(True, f"unreadable lease unchanged for {seen:.0f} s")
        return Verdict(False, "a lease is being written")
    if lease.turn < m.turns_done or m.status != "running":
        if seen >= obsolete_grace_s:
            return Verdict(
                True, f"left over by site {lease.site} from turn {lease.turn + 1}, which is already published"
            )
        return Verdict(False, f"site {lease.site} is releasing its lease")
    if lease.holder == holder_id() and lease.pid != os.getpid() and not process_alive(lease.pid):
        return Verdict(True, f"held by a process of this machine that has ended (site {lease.site})")
    late = (datetime.now(timezone.utc) - parse_utc(lease.expires_at)).total_seconds()
    if late > cfg.clock_skew_s:
        return Verdict(True, f"site {lease.site}'s lease expired {late:.0f} s ago")
    if seen >= patience_s:
        return Verdict(True, f"site {lease.site}'s lease was not renewed for {seen:.0f} s")
    return Verdict(False, f"site {lease.site} is training (lease until {lease.expires_at})")


def read_lease(t: Transport) -> LeaseView | None:
    try:
        raw = t.read_bytes(LEASE, MAX_LEASE_BYTES)
    except FileNotFoundError:
        return None
    except ServerFileTooLargeError:  # never parsed; breakable once it stays so for the lease time
        return LeaseView(b"(oversized lease)", None)
    return LeaseView(raw, Lease.parse(raw))


def try_acquire(t: Transport, lease: Lease) -> bool:
    """Create ``lease.json`` exclusively. A retried create whose first attempt
    did land (the answer was lost) finds its own token and counts as won."""
    if t.create_exclusive(LEASE, lease.to_bytes()):
        return True
    view = read_lease(t)
    return view is not None and view.lease is not None and view.lease.token == lease.token


def break_lease(t: Transport, view: LeaseView, by_site: str) -> bool:
    """Move the judged lease aside; False when it changed meanwhile (then it is put back)."""
    stamp = utc_now().replace(":", "").replace("-", "").replace(".", "")
    aside = f"{BROKEN_LEASES_DIR}/broken-{stamp}-{by_site}-{uuid.uuid4().hex[:6]}.json"
    t.makedirs(BROKEN_LEASES_DIR)
    try:
        t.rename(LEASE, aside)
    except FileNotFoundError:
        return False  # another site broke or released it first
    moved = t.read_bytes(aside, MAX_LEASE_BYTES)
    if moved != view.raw:  # renewed (or replaced) between our read and the rename
        if t.create_exclusive(LEASE, moved):
            t.delete(aside)
        return False
    return True


def renew(t: Transport, lease: Lease, ttl_s: float, signer: "TurnSigner | None" = None) -> Lease:
    """Extend our lease (signed again by ``signer`` when it was signed); LeaseLostError
    when another site holds it now or the ring has moved past our turn."""
    view = read_lease(t)
    renewed = lease.renewed(ttl_s, signer)
    if view is None:
        # Moved aside by a breaker that then saw our renewal, or broken and the
        # breaker's turn already published: only the manifest can tell.
        m = read_manifest(t)
        if (
            m.turns_done == lease.turn
            and m.holder is not None
            and m.holder.token == lease.token
            and t.create_exclusive(LEASE, renewed.to_bytes())
        ):
            return renewed
        view = read_lease(t)
    if view is None or view.lease is None or view.lease.token != lease.token:
        other = view.lease.site if view is not None and view.lease else "another site"
        raise LeaseLostError(
            f"This site's lease on the ring was broken by {other} (this turn stalled longer "
            f"than the lease time of {ttl_s:g} s); the turn's result is discarded."
        )
    t.write_atomic(LEASE, renewed.to_bytes())
    return renewed


def release(t: Transport, lease: Lease) -> None:
    """Delete our lease (not someone else's)."""
    view = read_lease(t)
    if view is not None and view.lease is not None and view.lease.token == lease.token:
        t.delete(LEASE)
