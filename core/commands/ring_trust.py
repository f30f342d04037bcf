"""The command line's side of trusting a ring: who confirms its keys, and what
``ring status`` and ``ring fetch`` check signatures against.

- ``ring turn`` meets a signed ring its site has not pinned: it pins it only with
  ``--trust-signers FILE`` (the coordinator's signers file, which must list exactly
  the ring's keys) or after a person answers yes on a terminal, having seen each
  key's fingerprint and the ring's; otherwise it refuses (core/ring/first_contact.py).
- ``ring status`` and ``ring fetch`` check against a pin: this site's (``--site``,
  which must have pinned the ring) or a signers file (``--signers FILE``). Without one,
  status says plainly that nothing was checked, and fetch refuses.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import ConfigError, printable


def signing_options(p: argparse.ArgumentParser, turn: bool) -> None:
    g = p.add_argument_group("signed turns")
    g.add_argument(
        "--trust-dir",
        type=Path,
        metavar="DIR",
        help="where this site pins the ring's keys and its last verified history "
        "(default ~/.local/state/hemarelay/ring-trust/SITE)",
    )
    g.add_argument(
        "--allow-unsigned",
        action="store_true",
        help="accept a ring created without signing keys (weights then cannot be traced to the site that trained them)",
    )
    if turn:
        g.add_argument(
            "--trust-signers",
            type=Path,
            metavar="FILE",
            help="at first contact, trust the ring's keys if they are exactly this signers file's "
            "(the coordinator's 'site ssh-ed25519 AAAA...' lines); without it, a terminal asks",
        )
        g.add_argument(
            "--signing-key",
            type=Path,
            metavar="FILE",
            help="this site's Ed25519 key (OpenSSH format; default "
            "~/.local/state/hemarelay/keys/ring-SITE.ed25519, see 'ring key')",
        )
        g.add_argument(
            "--max-epochs-per-turn",
            type=int,
            default=20,
            metavar="K",
            help="this site's cap on the epochs a turn trains, whatever the ring suggests",
        )
        g.add_argument(
            "--share-optimizer",
            action="store_true",
            help="also upload the optimizer's moments (Adam's running averages of this site's "
            "gradients) for the next site; by default they stay here and the next site starts afresh",
        )
        g.add_argument("--no-optimizer-upload", action="store_true", help=argparse.SUPPRESS)  # the default now
    else:
        g.add_argument(
            "--site",
            default=None,
            help="check signatures against this site's pin of the ring (its confirmed keys) and verified head",
        )
        g.add_argument(
            "--signers",
            type=Path,
            metavar="FILE",
            help="check signatures against these keys (the coordinator's signers file)",
        )


def trust_dir(args: argparse.Namespace, site: str) -> Path:
    from ..ring.trust import default_trust_dir

    return args.trust_dir or default_trust_dir(site)


def confirm_first_contact(args: argparse.Namespace, m, signer) -> None:
    """Before ``ring turn`` trains: a signed ring this site has not pinned is pinned only
    with ``--trust-signers`` or a person's yes on a terminal; else ConfigError."""
    from ..ring.first_contact import check_signers, confirm_ring, first_contact, pinned_or_own
    from ..ring.keys import read_signers_file
    from ..ring.trust import TrustStore

    if not m.config.signers or m.legacy:
        return
    store = TrustStore(trust_dir(args, args.site))
    if pinned_or_own(m, store, signer) is not None:
        return
    contact = first_contact(m)
    if args.trust_signers:
        check_signers(m, read_signers_file(args.trust_signers), str(args.trust_signers))
        confirm_ring(store, m)
        print(
            printable(
                f"Pinned the ring {m.ring_id[:8]} ({contact.fingerprint}): its keys are those of {args.trust_signers}."
            ),
            file=sys.stderr,
        )
        return
    print(printable(contact.describe(), keep_newlines=True), file=sys.stderr)
    if sys.stdin is not None and sys.stdin.isatty():
        answer = input("Trust these keys and settings? [y/N] ")
        if answer.strip().lower() in ("y", "yes"):
            confirm_ring(store, m)
            return
        raise ConfigError("The ring's keys were not confirmed; nothing was trained.")
    raise ConfigError(
        f"First contact with the ring {m.ring_id[:8]}: its keys must be confirmed before this site trusts "
        "them; give --trust-signers FILE (the coordinator's signers file) or run on a terminal to answer."
    )


def given_pin(args: argparse.Namespace, m):
    """The pin ``ring status``/``ring fetch`` check against (None: none given), and where
    it comes from in words: ``--signers FILE`` or ``--site`` (whose pin must exist)."""
    from ..ring.keys import read_signers_file
    from ..ring.trust import Pin, TrustStore

    if args.signers:
        return Pin.keys_only(read_signers_file(args.signers)), f"the keys in {args.signers}"
    if args.site:
        store = TrustStore(trust_dir(args, args.site))
        return store.get(m.ring_id), f"site {args.site}'s pin ({store.path(m.ring_id)})"
    return None, ""


def no_pin_text(args: argparse.Namespace, m, where: str) -> str:
    from ..ring.signing import ring_fingerprint

    if args.site:
        return (
            f"site {args.site} has not pinned the ring {m.ring_id[:8]} ({ring_fingerprint(m.ring_id, m.config)}) "
            "yet: confirm its keys with 'ring turn' (--trust-signers FILE), or give --signers FILE"
        )
    return (
        f"no pin to check them against: the keys on the server are the server's own claim; give --site SITE "
        f"(a site that confirmed the ring's keys) or --signers FILE (the coordinator's); ring fingerprint "
        f"{ring_fingerprint(m.ring_id, m.config)}"
    )


def check_trust(args: argparse.Namespace, m) -> dict:
    """What ``ring status`` says about the signatures: checked against a pin, or plainly not."""
    from ..ring.signing import RingTrustError, verify_chain

    signed = bool(m.config.signers) and not m.legacy
    if not signed:
        what = (
            "UNSIGNED (created without --signers)"
            if not m.config.signers
            else f"made by an older version ({m.format}): its signatures do not cover what sites act on"
        )
        return {
            "signed": False,
            "checked": False,
            "verified_turns": 0,
            "refused": None,
            "summary": f"Signatures: this ring is {what}.",
        }
    pin, where = given_pin(args, m)
    if pin is None:
        return {
            "signed": True,
            "checked": False,
            "verified_turns": 0,
            "refused": None,
            "summary": f"Signatures NOT checked: {no_pin_text(args, m, where)}.",
        }
    try:
        v = verify_chain(m, pin, require_signed=False)
    except RingTrustError as exc:
        return {
            "signed": True,
            "checked": True,
            "verified_turns": 0,
            "refused": exc.kind,
            "summary": f"REFUSED ({exc.kind}): {exc}",
        }
    if v.problem is not None:
        return {
            "signed": True,
            "checked": True,
            "verified_turns": len(v.records),
            "refused": v.problem.kind,
            "summary": f"Signatures (against {where}): {len(v.records)} turn(s) verified; "
            f"REFUSED ({v.problem.kind}): {v.problem}",
        }
    return {
        "signed": True,
        "checked": True,
        "verified_turns": len(v.records),
        "refused": None,
        "summary": f"Signatures (against {where}): all {len(v.records)} turn(s) signed by the site whose turn "
        "it was, as one chain, with the settings and bookkeeping they signed.",
    }
