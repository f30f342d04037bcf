"""The settings dialog's "Test connection": can this site reach, read and write its ring?"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from ..ring.errors import RingStateError, ServerError
from ..ring.first_contact import FirstContact, confirm_ring, first_contact
from ..ring.manifest import Manifest
from ..ring.trust import TrustStore
from .setup import SiteSetup, open_site_transport, trust_dir
from .sync import SiteView, read_view


@dataclass(frozen=True)
class ConnectionReport:
    ok: bool
    message: str  # one paragraph for the user
    view: SiteView | None = None
    first_contact: FirstContact | None = None  # a signed ring this site has not pinned: ask the person


def unconfirmed(setup: SiteSetup, m: Manifest) -> FirstContact | None:
    """What a person must confirm before this site trusts the ring (None: nothing, the
    ring is unsigned, already pinned here, or the embedded ring of this site alone)."""
    if setup.is_local or not m.config.signers or m.legacy:
        return None
    if TrustStore(trust_dir(setup)).get(m.ring_id) is not None:
        return None
    return first_contact(m)


def confirm_keys(setup: SiteSetup, m: Manifest) -> None:
    """Pin the ring's keys and settings as shown to the person who confirmed them."""
    confirm_ring(TrustStore(trust_dir(setup)), m)


def check_connection(setup: SiteSetup) -> ConnectionReport:
    """Connect, read the ring, check membership and write access. Connection
    and key problems raise the ring's typed errors (their message is for the user)."""
    setup = setup.validated()
    with open_site_transport(setup) as t:
        t.connect()
        where = t.describe()
        try:
            view = read_view(setup, t)
        except RingStateError as exc:
            return ConnectionReport(False, f"Connected to {where}, but {exc}")
        probe = f".hemarelay-write-check-{setup.site}-{uuid.uuid4().hex[:8]}"
        try:
            t.write_atomic(probe, b"write check\n")
            t.delete(probe)
        except ServerError as exc:
            return ConnectionReport(
                False, f"Connected to {where} and read the ring, but this site cannot write there: {exc}", view
            )
        m = view.manifest
        ring = (
            f"ring of sites {', '.join(m.config.sites)} ({m.status}, {m.turns_done} turns, "
            f"model {m.model_id or 'not trained yet'})"
        )
        if not view.member:
            return ConnectionReport(
                False,
                f"Connected to {where}: {ring}. Site '{setup.site}' is not "
                "a member; check the site name with the consortium.",
                view,
            )
        contact = unconfirmed(setup, m)
        keys = " Its signing keys are not confirmed at this site yet." if contact else ""
        return ConnectionReport(True, f"Connected to {where}: {ring}. {view.describe()}{keys}", view, contact)
