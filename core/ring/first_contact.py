"""First contact with a signed ring: a person at this site confirms its keys.

Nothing signed is trusted until this site holds a pin of the ring (its members,
keys and settings; :mod:`core.ring.trust`). The pin is written only after a
person compared the ring's key fingerprints (and the ring's own fingerprint, over
its id and settings) with the ones the ring's coordinator gave them: on the
command line with ``--trust-signers FILE`` (the coordinator's signers file) or an
interactive yes, in the desktop application in a dialog like the SSH host key's.
The embedded ring of one, which lists only this site's own key, needs nobody.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError
from .keys import TurnSigner, key_fingerprint
from .manifest import Manifest
from .names import printable
from .signing import config_sha256, ring_fingerprint
from .trust import Pin, TrustStore


@dataclass(frozen=True)
class FirstContact:
    """A signed ring this site has not pinned yet: what a person must confirm."""

    ring_id: str
    fingerprint: str  # ring_fingerprint: compare with the coordinator's
    keys: tuple[tuple[str, str], ...]  # (site, key fingerprint)
    settings: str  # the settings that drive turns, in words

    def describe(self) -> str:
        keys = "\n".join(f"  site {site}: {fp}" for site, fp in self.keys)
        return (
            f"First contact with the ring {self.ring_id[:8]} (fingerprint {self.fingerprint}). "
            f"It lists these turn-signing keys:\n{keys}\nand these settings: {self.settings}.\n"
            "Compare the fingerprints with the ones the ring's coordinator gave you (each site's "
            "'hemarelay ring key' line) before trusting them: from then on this site trains from "
            "and keeps only weights signed by these keys, under these settings."
        )


def first_contact(m: Manifest) -> FirstContact:
    cfg = m.config
    settings = (
        f"sites {', '.join(cfg.sites)} in {cfg.order} order, {cfg.epochs_per_turn} epoch(s) per turn, "
        f"patience {cfg.patience} ({cfg.convergence}), lease time {cfg.lease_ttl_s:g} s, clock skew "
        f"{cfg.clock_skew_s:g} s, optimizer {'reset every turn' if cfg.reset_optimizer else 'carried'}, "
        f"first turn from {cfg.start_from}"
    )
    keys = tuple((s, key_fingerprint(cfg.signers[s])) for s in cfg.sites if s in cfg.signers)
    return FirstContact(m.ring_id, ring_fingerprint(m.ring_id, cfg), keys, printable(settings))


def confirm_ring(store: TrustStore, m: Manifest) -> Pin:
    """Pin the ring's members, keys and settings, after a person confirmed them."""
    return store.pin(m.ring_id, Pin.of(m.config, config_sha256(m.config)))


def check_signers(m: Manifest, signers: dict[str, str], where: str) -> None:
    """ConfigError unless the ring lists exactly ``signers`` (a coordinator's signers file)."""
    listed = Pin.keys_only(m.config.signers)
    expected = Pin.keys_only(signers)
    if not listed.same_members(expected):
        differ = listed.changed_keys(expected)
        raise ConfigError(
            f"The ring {m.ring_id[:8]} does not list the keys of {where}: they differ for site(s) "
            f"{', '.join(differ)} ({', '.join(f'{s} {key_fingerprint(k)}' for s, k in m.config.signers.items())} "
            "on the server); nothing was pinned."
        )


def pinned_or_own(m: Manifest, store: TrustStore, own: TurnSigner | None) -> Pin | None:
    """This site's pin of the ring, pinning it first when the ring lists no key but this
    site's own (the embedded ring of one: there is nobody else to confirm)."""
    pin = store.get(m.ring_id)
    if pin is None and own is not None and m.config.signers and not m.legacy:
        listed = {s: k.split()[:2] for s, k in m.config.signers.items()}
        if listed == {own.site: own.public.split()[:2]}:
            pin = confirm_ring(store, m)
    return pin
