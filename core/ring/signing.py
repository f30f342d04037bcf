"""Signed turns: a site trusts weights only when the site whose turn it was signed them.

The server (and any member with write access to the ring folder) can rewrite
every file on it, so the sha256 in the manifest proves nothing by itself. Each
site holds an Ed25519 key (an OpenSSH private key file, ``ssh-keygen -t
ed25519`` format, optionally passphrase-protected); its public key is listed
for its site name in the ring's ``config.signers`` at ``ring init`` (an
``allowed_signers``-style file: ``site ssh-ed25519 AAAA...`` per line).

Every turn record is signed by its publisher over a canonical encoding of what
it publishes (ring id, turn, round, site, version, parent version, the hash of
the previous turn's record, weights and optimizer sha256, scalar metrics),
under the namespace ``hemarelay``. A site checks, before training from or
keeping any weights (:func:`verify_chain`):

- the members and keys are those it pinned at first contact (like known_hosts;
  :class:`TrustStore`), so the server cannot swap a key;
- every record is signed by the key of its site, and that site is the one whose
  turn it was (or took it over after a lease break, naming the rightful one);
- every record names the hash of the one before (a chain), and the manifest's
  current and best weights are exactly those of signed records (substitution);
- the chain extends the last head this site verified, kept locally: fewer
  turns than that head is a **rollback**, a different record at that turn a
  **fork** (a server showing different histories to different sites).

Any failure is a :class:`RingTrustError` naming what was refused and why.
Local evaluation stays the gate for *using* a version; this is the gate for
even looking at it.

:func:`verify_chain` only reads: what it found to record (the pin at first
contact, a new verified head) it returns, and :meth:`TrustStore.record`
writes (:func:`verify_and_record` does both).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from typing import Any, Iterable

from cryptography.exceptions import InvalidSignature

from ..errors import ConfigError
from .errors import RingStateError
from .keys import (
    NAMESPACE,
    TurnSigner,
    check_public_key,
    default_key_path,
    key_fingerprint,
    read_signers_file,
)
from .manifest import Manifest, TurnRecord, site_for_turn
from .names import printable
from .trust import Head, Pin, TrustStore, default_trust_dir

__all__ = [  # keys and pins have modules of their own; importable from here as before
    "RingTrustError",
    "TurnSigner",
    "default_key_path",
    "default_trust_dir",
    "key_fingerprint",
    "read_signers_file",
    "TrustStore",
    "Verified",
    "record_payload",
    "record_hash",
    "verify_record",
    "sign_record",
    "verify_chain",
    "verify_and_record",
    "check_own_key",
]

RECORD_FORMAT = "hemarelay-turn/1"
# What a turn's publisher signs (RECORD_FORMAT 1), besides the ring id.
SIGNED_FIELDS = (
    "turn",
    "round",
    "site",
    "in_place_of",
    "version",
    "parent_version",
    "parent_hash",
    "weights_file",
    "weights_sha256",
    "optimizer_sha256",
    "epochs",
    "n_examples",
    "metrics",
)


class RingTrustError(RingStateError):
    """What the server shows cannot be trusted: a bad or missing signature, a
    changed key, substituted weights, a rollback or a fork. ``kind`` names it."""

    def __init__(self, kind: str, message: str, version: int | None = None, site: str | None = None) -> None:
        super().__init__(message)
        self.kind, self.version, self.site = kind, version, site


# -- records -------------------------------------------------------------------


def record_payload(ring_id: str, r: TurnRecord) -> bytes:
    """The canonical bytes a turn's publisher signs."""
    doc: dict[str, Any] = {"format": RECORD_FORMAT, "ring_id": ring_id}
    doc.update({name: getattr(r, name) for name in SIGNED_FIELDS})
    doc["metrics"] = {k: float(v) for k, v in sorted(r.metrics.items())}
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def record_hash(ring_id: str, r: TurnRecord) -> str:
    return hashlib.sha256(record_payload(ring_id, r) + b"\0" + r.signature.encode()).hexdigest()


def verify_record(ring_id: str, r: TurnRecord, key_line: str) -> bool:
    try:
        sig = bytes.fromhex(r.signature)
        check_public_key(key_line, "key").verify(sig, NAMESPACE + b"\0" + record_payload(ring_id, r))
        return True
    except (InvalidSignature, ValueError, ConfigError):
        return False


# -- the verification ----------------------------------------------------------


@dataclass(frozen=True)
class Verified:
    """The verdict on a ring's history: the part this site may use (every record up
    to the first refused one; all of them when ``problem`` is None), and what to
    record about it (:meth:`TrustStore.record`)."""

    records: tuple[TurnRecord, ...]
    signed: bool  # False: an unsigned ring (allowed only when the site agrees)
    problem: RingTrustError | None = None
    first_contact: Pin | None = None  # the ring's members and keys, to pin (none pinned yet)
    head: Head | None = None  # the newly verified head, to record (None: nothing new)

    def weights_ok(self, sha256: str) -> bool:
        return any(r.weights_sha256 == sha256 for r in self.records)

    def raise_problem(self) -> None:
        if self.problem is not None:
            raise self.problem


def _refuse(kind: str, msg: str, r: TurnRecord | None = None) -> RingTrustError:
    return RingTrustError(kind, printable(msg), r.version if r else None, r.site if r else None)


def verify_chain(m: Manifest, pin: Pin | None, require_signed: bool = True, pin_where: str = "the pin") -> Verified:
    """Check ``m`` against this site's ``pin`` (None: first contact), as described in the
    module docstring. Pure: the verdict says what to record. A ring refused as a whole
    (a changed key, an unsigned ring) raises RingTrustError; ``pin_where`` names the pin
    in that message."""
    records = tuple(m.turn_records)
    if not m.config.signers:
        _check_unsigned(m, pin, require_signed)
        return Verified(records, signed=False)
    shown = Pin.of(m.config)
    first_contact = shown if pin is None else None
    pin = pin or shown
    if not pin.same_members(shown):
        raise _key_change(m, pin, shown, pin_where)
    good, problem = _signed_chain(m, pin.signers)
    if problem is None:
        problem = _check_pointers(m, records)
    moved = _against_head(m, records, pin.head)
    if moved is not None:
        good, problem = [], moved
    head = None
    if good and problem is None and (pin.head is None or good[-1].turn > pin.head.turn):
        head = Head(good[-1].turn, good[-1].version, record_hash(m.ring_id, good[-1]))
    return Verified(tuple(good), True, problem, first_contact, head)


def verify_and_record(m: Manifest, store: TrustStore | None, require_signed: bool = True) -> Verified:
    """:func:`verify_chain` against ``store``'s pin, then record its verdict there."""
    pin = store.get(m.ring_id) if store is not None else None
    where = str(store.path(m.ring_id)) if store is not None else "the pin"
    verified = verify_chain(m, pin, require_signed, where)
    if store is not None:
        store.record(m.ring_id, verified.first_contact, verified.head)
    return verified


def _check_unsigned(m: Manifest, pin: Pin | None, require_signed: bool) -> None:
    if pin is not None and pin.signers:
        raise _refuse(
            "key-change",
            f"The ring {m.ring_id[:8]} was signed when this site first saw it, "
            "but the server now shows it without signing keys; refused.",
        )
    if require_signed:
        raise _refuse(
            "unsigned",
            f"The ring {m.ring_id[:8]} has no signing keys, so weights on it "
            "cannot be traced to the site that trained them; this site only "
            "joins signed rings (ask the coordinator to create it with "
            "'hemarelay ring init --signers FILE').",
        )


def _key_change(m: Manifest, pin: Pin, shown: Pin, pin_where: str) -> RingTrustError:
    changed = pin.changed_keys(shown)
    what = f"the signing key of site(s) {', '.join(changed)} changed" if changed else "its members or order changed"
    return _refuse(
        "key-change",
        f"The ring {m.ring_id[:8]} is not the one this site pinned at first "
        f"contact: {what}. Refused; if the consortium really re-keyed, remove "
        f"{pin_where} after checking with its coordinator.",
    )


def _signed_chain(m: Manifest, signers: dict[str, str]) -> tuple[list[TurnRecord], RingTrustError | None]:
    """The records that form one signed chain from the first turn, and why the next does not."""
    good: list[TurnRecord] = []
    prev_hash = ""
    for i, r in enumerate(m.turn_records):
        rightful = site_for_turn(m.config, r.turn) if r.turn >= 0 else "?"
        if r.turn != i or r.version != i + 1 or r.parent_version != i:
            return good, _refuse(
                "substitution",
                f"Version {r.version} from site {r.site}: the history is out of sequence at turn {i + 1}; refused.",
                r,
            )
        if not r.signature:
            return good, _refuse("unsigned", f"Version {r.version} from site {r.site} is not signed; refused.", r)
        if r.site != rightful and r.in_place_of != rightful:
            return good, _refuse(
                "substitution",
                f"Version {r.version} is signed by site {r.site}, but turn "
                f"{r.turn + 1} was site {rightful}'s; refused.",
                r,
            )
        if r.parent_hash != prev_hash:
            return good, _refuse(
                "fork",
                f"Version {r.version} from site {r.site} does not extend the previous "
                f"turn's record (a forked history); refused.",
                r,
            )
        if not verify_record(m.ring_id, r, signers.get(r.site, "")):
            return good, _refuse(
                "signature",
                f"Version {r.version} from site {r.site}: its signature does not "
                f"match site {r.site}'s key (weights or record replaced on the "
                "server); refused.",
                r,
            )
        good.append(r)
        prev_hash = record_hash(m.ring_id, r)
    return good, None


def _against_head(m: Manifest, records: tuple[TurnRecord, ...], head: Head | None) -> RingTrustError | None:
    """A rollback or fork of the history this site already verified."""
    if head is None:
        return None
    if len(records) <= head.turn:
        return _refuse(
            "rollback",
            f"The server shows {len(records)} turn(s), but this site already "
            f"verified turn {head.turn + 1} (version {head.version}): the history was "
            "rolled back; refused.",
        )
    if record_hash(m.ring_id, records[head.turn]) != head.hash:
        return _refuse(
            "fork",
            f"The server's turn {head.turn + 1} differs from the one this site verified "
            f"(version {head.version}): the history was forked or rewritten; refused.",
        )
    return None


def _check_pointers(m: Manifest, records: Iterable[TurnRecord]) -> RingTrustError | None:
    """The manifest's current, optimizer and best weights must be signed ones."""
    records = list(records)
    last = records[-1] if records else None
    if m.turns_done != len(records):
        return _refuse(
            "substitution",
            f"The manifest counts {m.turns_done} turns but holds {len(records)} signed records; refused.",
        )
    if last is None:
        if m.weights is not None or m.best is not None or m.optimizer is not None:
            return _refuse("substitution", "The manifest names weights although no signed turn produced any; refused.")
        return None
    w = m.weights
    if w is None or (w.sha256, w.file, w.version) != (last.weights_sha256, last.weights_file, last.version):
        return _refuse(
            "substitution",
            f"The latest weights named by the manifest are not those site "
            f"{last.site} signed for version {last.version} (weights and hash "
            "replaced on the server); refused.",
            last,
        )
    o = m.optimizer
    if (o.sha256 if o else "") != last.optimizer_sha256:
        return _refuse(
            "substitution",
            f"The optimizer state named by the manifest is not the one site "
            f"{last.site} signed for version {last.version}; refused.",
            last,
        )
    if m.best is not None:
        src = next(
            (
                r
                for r in records
                if r.weights_sha256 == m.best.weights.sha256
                and r.weights_file == m.best.weights.file
                and r.version == m.best.weights.version
            ),
            None,
        )
        if src is None or src.metrics.get("val_loss") != m.best.val_loss:
            return _refuse(
                "substitution",
                f"The 'best' weights (version {m.best.weights.version}) are not a "
                "signed turn's weights with its validation loss; refused.",
            )
    return None


def sign_record(signer: TurnSigner, ring_id: str, r: TurnRecord) -> TurnRecord:
    return replace(r, signature=signer.sign(record_payload(ring_id, r)))


def check_own_key(m: Manifest, signer: TurnSigner | None, site: str) -> None:
    """Before training: a signed ring needs this site's key to be the one it lists."""
    if not m.config.signers:
        return
    if signer is None:
        raise ConfigError(f"The ring {m.ring_id[:8]} is signed: this site needs its signing key to take a turn.")
    listed = m.config.signers.get(site)
    if listed is None or listed.split()[:2] != signer.public.split()[:2]:
        raise ConfigError(
            f"This site's signing key ({key_fingerprint(signer.public)}) is not the key the ring "
            f"lists for site {site} ({key_fingerprint(listed) if listed else 'none'}); "
            "nothing was trained."
        )
