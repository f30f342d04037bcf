"""Signed turns: a site trusts weights only when the site whose turn it was signed them.

The server (and any member with write access to the ring folder) can rewrite
every file on it, so the sha256 in the manifest proves nothing by itself. Each
site holds an Ed25519 key (an OpenSSH private key file, ``ssh-keygen -t
ed25519`` format, optionally passphrase-protected); its public key is listed
for its site name in the ring's ``config.signers`` at ``ring init`` (an
``allowed_signers``-style file: ``site ssh-ed25519 AAAA...`` per line).

Every turn record is signed by its publisher, under the namespace
``hemarelay``, over a canonical encoding of the whole record (``hemarelay-turn/2``):
ring id, turn, round, site, version, the hash of the previous turn's record
(a chain), the weights' and optimizer state's names, sizes and sha256, the
metrics and the convergence bookkeeping it computed, the hash of the ring's
settings and, for a turn taken in another site's place, the lease it broke as
that lease's holder signed it. A site checks, before training from or keeping
any weights (:func:`verify_chain`):

- the members, keys and settings are those a person at this site confirmed at
  first contact (like known_hosts; :mod:`core.ring.trust`): the server can swap
  neither a key nor a setting, and without a pin nothing is trusted;
- every record is signed by the key of its site, and that site is the one whose
  turn it was, or took it over with the evidence of a lease break: the turn's
  own lease, signed by another member, broken after it expired;
- every record names the hash of the one before (a chain) and the hash of the
  ring's settings; its convergence bookkeeping is what the rule gives from the
  signed losses (:func:`core.ring.convergence.replay`);
- the manifest's current, optimizer and best weights, status, counters and
  verdict are exactly what the signed records give (substitution);
- the chain extends the last head this site verified: fewer turns than that head
  is a **rollback**, a different record at that turn a **fork**.

Any failure is a :class:`RingTrustError` naming what was refused and why.
Local evaluation stays the gate for *using* a version; this is the gate for
even looking at it.

:func:`verify_chain` only reads: the new verified head it found it returns, and
:meth:`TrustStore.record` writes (:func:`verify_and_record` does both). Rings
made before this (``hemarelay-ring/1``) signed less than what sites act on:
they are trusted only as far as an unsigned ring (``--allow-unsigned``).
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any

from cryptography.exceptions import InvalidSignature

from ..errors import ConfigError
from .config import RingConfig
from .convergence import Tally, replay
from .errors import RingStateError
from .keys import (
    NAMESPACE,
    TurnSigner,
    check_public_key,
    default_key_path,
    key_fingerprint,
    read_signers_file,
)
from .manifest import FORMAT, Manifest, TurnRecord, site_for_turn
from .names import printable
from .records import Lease, canonical_json, parse_utc
from .schema import encode
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
    "config_sha256",
    "ring_fingerprint",
    "record_payload",
    "record_hash",
    "verify_record",
    "verify_lease",
    "sign_record",
    "verify_chain",
    "verify_and_record",
    "check_own_key",
]

# What a turn's publisher signs, by the ring's format.
RECORD_FORMATS = {"hemarelay-ring/1": "hemarelay-turn/1", FORMAT: "hemarelay-turn/2"}
# hemarelay-turn/1 signed these fields only (kept to read rings made before /2).
V1_SIGNED = (
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
    """What the server shows cannot be trusted: a bad or missing signature, a changed
    key or setting, substituted weights, a rollback, a fork, or keys nobody at this site
    confirmed ("unpinned"). ``kind`` names it."""

    def __init__(self, kind: str, message: str, version: int | None = None, site: str | None = None) -> None:
        super().__init__(message)
        self.kind, self.version, self.site = kind, version, site


# -- what is signed ------------------------------------------------------------


def config_sha256(config: RingConfig) -> str:
    """The hash of the ring's settings (members, order, keys, lease time, rule...)."""
    return hashlib.sha256(canonical_json(encode(config))).hexdigest()


def ring_fingerprint(ring_id: str, config: RingConfig) -> str:
    """``SHA256:...`` of the ring id and its settings, keys included: what a coordinator
    publishes and each site's person compares at first contact (out of band)."""
    digest = hashlib.sha256(ring_id.encode() + b"\0" + canonical_json(encode(config))).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def record_payload(ring_id: str, r: TurnRecord, ring_format: str = FORMAT) -> bytes:
    """The canonical bytes a turn's publisher signs: the whole record but its signature
    (``hemarelay-turn/2``), or the fields a ``hemarelay-ring/1`` ring signed."""
    fields = encode(r)
    if RECORD_FORMATS.get(ring_format) == "hemarelay-turn/1":
        fields = {name: fields[name] for name in V1_SIGNED}
    else:
        fields.pop("signature")
    doc: dict[str, Any] = {"format": RECORD_FORMATS.get(ring_format, ring_format), "ring_id": ring_id, **fields}
    doc["metrics"] = {k: float(v) for k, v in sorted(r.metrics.items())}
    return canonical_json(doc)


def record_hash(ring_id: str, r: TurnRecord, ring_format: str = FORMAT) -> str:
    return hashlib.sha256(record_payload(ring_id, r, ring_format) + b"\0" + r.signature.encode()).hexdigest()


def _verify(key_line: str, signature: str, payload: bytes) -> bool:
    try:
        check_public_key(key_line, "key").verify(bytes.fromhex(signature), NAMESPACE + b"\0" + payload)
        return True
    except (InvalidSignature, ValueError, ConfigError):
        return False


def verify_record(ring_id: str, r: TurnRecord, key_line: str, ring_format: str = FORMAT) -> bool:
    return _verify(key_line, r.signature, record_payload(ring_id, r, ring_format))


def verify_lease(ring_id: str, lease: Lease, key_line: str) -> bool:
    return lease.ring_id == ring_id and _verify(key_line, lease.signature, lease.payload())


def sign_record(signer: TurnSigner, m: Manifest, r: TurnRecord) -> TurnRecord:
    """``r`` signed for the ring of ``m`` (in the record format of its ring)."""
    return replace(r, signature=signer.sign(record_payload(m.ring_id, r, m.format)))


# -- the verification ----------------------------------------------------------


@dataclass(frozen=True)
class Verified:
    """The verdict on a ring's history: the part this site may use (every record up
    to the first refused one; all of them when ``problem`` is None), the bookkeeping
    those records give, and the new head to record (:meth:`TrustStore.record`)."""

    records: tuple[TurnRecord, ...]
    signed: bool  # False: an unsigned (or legacy) ring, allowed only when the site agrees
    problem: RingTrustError | None = None
    head: Head | None = None  # the newly verified head, to record (None: nothing new)
    tally: Tally | None = None  # best weights, counters and verdict from ``records``

    def weights_ok(self, sha256: str) -> bool:
        return any(r.weights_sha256 == sha256 for r in self.records)

    def raise_problem(self) -> None:
        if self.problem is not None:
            raise self.problem


def _refuse(kind: str, msg: str, r: TurnRecord | None = None) -> RingTrustError:
    return RingTrustError(kind, printable(msg), r.version if r else None, r.site if r else None)


def verify_chain(
    m: Manifest,
    pin: Pin | None,
    require_signed: bool = True,
    pin_where: str = "the pin",
    now: datetime | None = None,
) -> Verified:
    """Check ``m`` against this site's ``pin``, as described in the module docstring.
    Pure: the verdict says what to record. A ring refused as a whole (no pin, a changed
    key or setting, an unsigned ring) raises RingTrustError; ``pin_where`` names the pin
    in that message, ``now`` is this site's clock (for lease-break evidence)."""
    records = tuple(m.turn_records)
    if not m.config.signers or m.legacy:
        _check_unsigned(m, pin, require_signed)
        return Verified(records, signed=False)
    if pin is None:
        raise _refuse(
            "unpinned",
            f"Nobody at this site has confirmed the signing keys of the ring {m.ring_id[:8]} yet "
            f"(its fingerprint is {ring_fingerprint(m.ring_id, m.config)}); nothing on it is trusted "
            "until a person compares them with the coordinator's and confirms them.",
        )
    shown = Pin.of(m.config, config_sha256(m.config))
    if not pin.same_members(shown):
        raise _key_change(m, pin, shown, pin_where)
    good, problem = _signed_chain(m, pin.signers, now or datetime.now(timezone.utc))
    tally, verdicts = replay(m.config, good)
    for n, (r, verdict) in enumerate(zip(good, verdicts)):
        if (r.improved, r.patience_counter) != (verdict.improved, verdict.patience_counter):
            good, problem = (
                good[:n],
                _refuse(
                    "substitution",
                    f"Version {r.version} from site {r.site}: its convergence bookkeeping does not "
                    "follow from the signed validation losses; refused.",
                    r,
                ),
            )
            tally, _ = replay(m.config, good)
            break
    if problem is None:
        problem = _check_pointers(m, tally)
    moved = _against_head(m, records, pin.head)
    if moved is not None:
        good, problem, tally = [], moved, None
    head = None
    if good and problem is None and (pin.head is None or good[-1].turn > pin.head.turn):
        head = Head(good[-1].turn, good[-1].version, record_hash(m.ring_id, good[-1], m.format))
    return Verified(tuple(good), True, problem, head, tally)


def verify_and_record(m: Manifest, store: TrustStore | None, require_signed: bool = True) -> Verified:
    """:func:`verify_chain` against ``store``'s pin, then record the new head there.
    Without a store the ring's own keys are the pin (a check of signatures only)."""
    if store is None:
        pin = Pin.of(m.config, config_sha256(m.config))
        return verify_chain(m, pin, require_signed)
    verified = verify_chain(m, store.get(m.ring_id), require_signed, str(store.path(m.ring_id)))
    if verified.head is not None:
        store.advance(m.ring_id, verified.head)
    return verified


def _check_unsigned(m: Manifest, pin: Pin | None, require_signed: bool) -> None:
    if m.config.signers:  # a legacy ring
        if not require_signed:
            return
        raise _refuse(
            "unsigned",
            f"The ring {m.ring_id[:8]} was made by an older version ({m.format}) whose signatures "
            "do not cover its settings and bookkeeping, so it is trusted only as far as an unsigned "
            "ring (--allow-unsigned); ask the coordinator for a new ring.",
        )
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
    if changed:
        kind, what = "key-change", f"the signing key of site(s) {', '.join(changed)} changed"
    elif (pin.sites, pin.order, pin.seed) != (shown.sites, shown.order, shown.seed) and pin.order:
        kind, what = "key-change", "its members or order changed"
    else:
        kind, what = "config-change", "its settings (lease time, patience, rule...) changed"
    return _refuse(
        kind,
        f"The ring {m.ring_id[:8]} is not the one this site pinned at first "
        f"contact: {what}. Refused; if the consortium really changed it, remove "
        f"{pin_where} after checking with its coordinator.",
    )


def _signed_chain(
    m: Manifest, signers: dict[str, str], now: datetime
) -> tuple[list[TurnRecord], RingTrustError | None]:
    """The records that form one signed chain from the first turn, and why the next does not."""
    good: list[TurnRecord] = []
    prev_hash = ""
    settings = config_sha256(m.config)
    for i, r in enumerate(m.turn_records):
        rightful = site_for_turn(m.config, r.turn) if r.turn >= 0 else "?"
        why = None
        if r.turn != i or r.version != i + 1 or r.parent_version != i:
            kind, why = "substitution", f"the history is out of sequence at turn {i + 1}"
        elif not r.signature:
            kind, why = "unsigned", "it is not signed"
        elif r.site != rightful and (takeover := _takeover_problem(m, r, rightful, signers, now)):
            kind, why = "substitution", f"it took turn {r.turn + 1}, site {rightful}'s, {takeover}"
        elif r.parent_hash != prev_hash:
            kind, why = "fork", "it does not extend the previous turn's record (a forked history)"
        elif not verify_record(m.ring_id, r, signers.get(r.site, ""), m.format):
            kind, why = (
                "signature",
                (f"its signature does not match site {r.site}'s key (weights or record replaced on the server)"),
            )
        elif r.config_sha256 != settings:
            kind, why = "config-change", "it was trained under other ring settings than the server shows now"
        if why is not None:
            return good, _refuse(kind, f"Version {r.version} from site {r.site}: {why}; refused.", r)
        good.append(r)
        prev_hash = record_hash(m.ring_id, r, m.format)
    return good, None


def _takeover_problem(m: Manifest, r: TurnRecord, rightful: str, signers: dict[str, str], now: datetime) -> str:
    """Why ``r``, published by a site whose turn it was not, lacks the evidence to have
    taken it ("" when its evidence holds): the turn's own lease, signed by another member,
    broken (by the record's signed claim) after it expired, and not in this site's future."""
    lb = r.lease_break
    if r.in_place_of != rightful:
        return "without naming that site"
    if lb is None:
        return "without signed evidence of a lease break"
    lease = lb.lease
    if lease.turn != r.turn or lease.site == r.site or lease.site not in signers:
        return "with a lease of another turn or site as evidence"
    if not verify_lease(m.ring_id, lease, signers[lease.site]):
        return f"with a lease that site {lease.site} did not sign"
    skew = timedelta(seconds=m.config.clock_skew_s)
    broken = parse_utc(lb.broken_at)
    if broken.tzinfo is None or broken < parse_utc(lease.expires_at) + skew:
        return f"by breaking site {lease.site}'s lease before it had expired"
    if broken > now + skew:
        return "claiming a lease break in this site's future"
    return ""


def _check_pointers(m: Manifest, tally: Tally) -> RingTrustError | None:
    """What the manifest says besides the records must be what the signed records give."""
    records = m.turn_records
    last = records[-1] if records else None
    if m.turns_done != len(records):
        return _refuse(
            "substitution",
            f"The manifest counts {m.turns_done} turns but holds {len(records)} signed records; refused.",
        )
    if last is None:
        if m.weights is not None or m.best is not None or m.optimizer is not None:
            return _refuse("substitution", "The manifest names weights although no signed turn produced any; refused.")
    elif m.weights != last.weights_ref():
        return _refuse(
            "substitution",
            f"The latest weights named by the manifest are not those site "
            f"{last.site} signed for version {last.version} (file, size, hash or label "
            "replaced on the server); refused.",
            last,
        )
    elif m.optimizer != last.optimizer_ref():
        return _refuse(
            "substitution",
            f"The optimizer state named by the manifest is not the one site "
            f"{last.site} signed for version {last.version}; refused.",
            last,
        )
    if m.best != tally.best:
        version = m.best.weights.version if m.best else None
        return _refuse(
            "substitution",
            f"The 'best' weights (version {version}) are not the best of the signed turns "
            f"(version {tally.best.weights.version if tally.best else None}, by their signed "
            "validation losses); refused.",
        )
    derived = {
        "status": (m.status, tally.status),
        "patience counter": (m.patience_counter, tally.patience_counter),
        "per-site counters": (m.per_site, tally.per_site),
        "convergence verdict": (m.convergence, tally.convergence),
        "model": (m.model_id, last.model_id if last else None),
    }
    wrong = [name for name, (shown, signed) in derived.items() if shown != signed]
    if wrong:
        return _refuse(
            "substitution",
            f"The manifest's {', '.join(wrong)} differ from what the signed turn records give; refused.",
        )
    return None


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
    if record_hash(m.ring_id, records[head.turn], m.format) != head.hash:
        return _refuse(
            "fork",
            f"The server's turn {head.turn + 1} differs from the one this site verified "
            f"(version {head.version}): the history was forked or rewritten; refused.",
        )
    return None


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
