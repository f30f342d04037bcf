"""The settings dialog's "Test connection": can this site reach, read and write its ring?"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from ..ring.errors import RingStateError, ServerError
from .setup import SiteSetup, open_site_transport
from .sync import SiteView, read_view


@dataclass(frozen=True)
class ConnectionReport:
    ok: bool
    message: str  # one paragraph for the user
    view: SiteView | None = None


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
        return ConnectionReport(True, f"Connected to {where}: {ring}. {view.describe()}", view)
