"""Taking the ring lease for this site's turn: one look at the lock, and its outcome.

The rules (step 1 of :mod:`core.ring.turn`):

- no lease on the server: the site whose turn it is takes it (exclusive create);
  every other site waits for it;
- a lease that may not be broken yet (:func:`core.ring.lease.judge_lease`): wait;
- a lease left over from a turn already published: only the site whose turn it
  is now clears it, and then looks again;
- a stalled lease of the current turn: the site whose turn it is breaks it and
  takes its turn; another site only once the lease has expired (by its holder's
  own clock, plus the ring's clock-skew tolerance) and, on a signed ring, only a
  lease its holder signed: that lease is the evidence, in the new turn's signed
  record, that the turn was taken over and not simply taken (:mod:`core.ring.signing`).

On a signed ring every lease is signed by the site taking it.
:func:`take_lease` looks once and says what happened in a :class:`LeaseAttempt`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Generator

from ..progress import Progress
from .audit import AuditLog
from .keys import TurnSigner
from .lease import Lease, LeaseView, LeaseWatch, break_lease, judge_lease, new_lease, read_lease, try_acquire
from .manifest import Manifest
from .records import parse_utc
from .retry import Retry
from .signing import verify_lease
from .transport import Transport

STAGE_LEASE = "Taking the ring lease"


@dataclass(frozen=True)
class BrokenLease:
    """A stalled lease of this turn that this site broke to take the turn itself."""

    view: LeaseView  # the lease as it was read before breaking it
    reason: str  # why it could be broken, for people and the ring's history


@dataclass(frozen=True)
class LeaseAttempt:
    """The outcome of one look at the lease."""

    lease: Lease | None = None  # set: this site holds the lease now
    broken: BrokenLease | None = None  # the lease this site broke to take this one
    waiting_for: str = ""  # no lease: why this site waits, for people ("" with no lease: look again at once)

    @property
    def look_again_now(self) -> bool:
        """No lease, but nothing to wait for: a race was lost, or an old lease cleared."""
        return self.lease is None and not self.waiting_for


def take_lease(
    transport: Transport,
    m: Manifest,
    site: str,
    watch: LeaseWatch,
    obsolete_grace_s: float,
    retry: Retry,
    audit: AuditLog,
    signer: TurnSigner | None = None,
) -> Generator[Progress, None, LeaseAttempt]:
    """Look at the lease once and take it when the rules above allow (signed by
    ``signer`` on a signed ring)."""
    rightful = m.next_site
    signer = signer if m.config.signers and not m.legacy else None
    view = yield from retry.call(lambda: read_lease(transport))
    if view is None:
        if rightful != site:
            return LeaseAttempt(waiting_for=f"waiting for site {rightful} to take it")
        return (yield from _take(transport, m, site, retry, None, signer))
    verdict = judge_lease(view, m, watch, obsolete_grace_s)
    obsolete = view.lease is not None and view.lease.turn < m.turns_done
    if not verdict.breakable or (obsolete and rightful != site):
        return LeaseAttempt(waiting_for=verdict.reason)
    if not obsolete and rightful != site and not may_take_over(view.lease, m, site):
        return LeaseAttempt(waiting_for=f"{verdict.reason}; only site {rightful} may take its turn before it expires")
    yield Progress(STAGE_LEASE, message=f"Breaking the ring lease: {verdict.reason}.")
    if not (yield from retry.call(lambda: break_lease(transport, view, site))):
        return LeaseAttempt()  # renewed, released or broken by another site meanwhile
    audit.record("lease_break", detail=verdict.reason)
    if obsolete:
        return LeaseAttempt()  # a published turn's leftover, cleared: the turn is free now
    return (yield from _take(transport, m, site, retry, BrokenLease(view, verdict.reason), signer))


def may_take_over(lease: Lease | None, m: Manifest, site: str, now: datetime | None = None) -> bool:
    """Whether ``site`` may take the current turn in its holder's place: the turn's own
    lease, held by another site, expired by its holder's clock (plus the clock-skew
    tolerance) and, on a signed ring, signed by its holder (the evidence others check)."""
    if lease is None or lease.turn != m.turns_done or lease.site == site:
        return False
    now = now or datetime.now(timezone.utc)
    if parse_utc(lease.expires_at) + timedelta(seconds=m.config.clock_skew_s) >= now:
        return False
    if not m.config.signers or m.legacy:
        return True
    key = m.config.signers.get(lease.site)
    return key is not None and verify_lease(m.ring_id, lease, key)


def _take(
    transport: Transport,
    m: Manifest,
    site: str,
    retry: Retry,
    broken: BrokenLease | None,
    signer: TurnSigner | None,
) -> Generator[Progress, None, LeaseAttempt]:
    candidate = new_lease(site, m.turns_done, m.config.lease_ttl_s, signer, m.ring_id)
    if (yield from retry.call(lambda: try_acquire(transport, candidate))):
        return LeaseAttempt(lease=candidate, broken=broken)
    return LeaseAttempt()  # another site was faster
