"""What the ring's files hold: the manifest's parts (files, the holder, turn
records and events, per-site counts) and the lease.

Each is a frozen dataclass whose annotations are its schema on the server
(:mod:`core.ring.schema`): ``NAMES`` lists the fields that are names from the
server (checked by :func:`core.ring.names.check_name`), ``check`` what the
types alone do not say.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, ClassVar

from .schema import decode, encode

if TYPE_CHECKING:
    from .keys import TurnSigner

METRIC_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
LEASE_FORMAT = "hemarelay-lease/1"  # what a lease's holder signs


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def plus_seconds(stamp: str, seconds: float) -> str:
    later = parse_utc(stamp) + timedelta(seconds=seconds)
    return later.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def canonical_json(doc: Any) -> bytes:
    """The one byte encoding of what is signed or hashed: sorted keys, no spaces."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


@dataclass(frozen=True)
class Lease:
    """The ring's lock (``lease.json``), see :mod:`core.ring.lease`. On a signed ring
    its holder signs it (over the ring id and every field), so that a site breaking
    it can show, in its own turn record, that the turn's site had really taken the
    turn and let it expire (:class:`LeaseBreak`)."""

    site: str
    token: str  # unique per acquisition
    turn: int  # the turn (manifest.turns_done) it was taken for
    holder: str  # holder_id() of the machine
    pid: int
    acquired_at: str
    renewed_at: str
    expires_at: str
    ttl_s: float
    renewals: int = 0
    ring_id: str = ""  # set on signed rings: what the signature binds the lease to
    signature: str = ""

    NAMES: ClassVar = {
        "site": "site",
        "token": "token",
        "holder": "token",
        "ring_id": "ring id",
        "signature": "signature",
    }

    def check(self, where: str) -> None:
        for stamp in (self.acquired_at, self.renewed_at, self.expires_at):
            if len(stamp) > 40:
                raise ValueError(f"{where}: time stamp too long")
            parse_utc(stamp)
        if not (0 < self.ttl_s < 1e7) or self.turn < 0:
            raise ValueError(f"{where}: lease time or turn out of range")

    def to_bytes(self) -> bytes:
        return json.dumps(encode(self), indent=1).encode()

    @staticmethod
    def parse(data: bytes) -> "Lease | None":
        """None when empty, partial (being written, or its writer crashed) or not a lease
        (the server is shared: every field is checked, :mod:`core.ring.schema`)."""
        try:
            return decode(Lease, json.loads(data), "lease")
        except (ValueError, TypeError, UnicodeDecodeError, RecursionError):
            return None

    def payload(self) -> bytes:
        """The canonical bytes its holder signs."""
        doc = {k: v for k, v in encode(self).items() if k != "signature"}
        return canonical_json({"format": LEASE_FORMAT, **doc})

    def signed_by(self, signer: "TurnSigner | None", ring_id: str) -> "Lease":
        """Signed for ``ring_id`` by ``signer`` (unchanged without a signer: an unsigned ring)."""
        if signer is None:
            return self
        bound = replace(self, ring_id=ring_id, signature="")
        return replace(bound, signature=signer.sign(bound.payload()))

    def renewed(self, ttl_s: float, signer: "TurnSigner | None" = None) -> "Lease":
        now = utc_now()
        renewed = replace(self, renewed_at=now, renewals=self.renewals + 1, expires_at=plus_seconds(now, ttl_s))
        return renewed.signed_by(signer, self.ring_id) if self.signature else renewed


@dataclass(frozen=True)
class LeaseBreak:
    """A site's evidence, in its own signed turn record, for taking a turn in another
    site's place: the lease it broke, as its holder signed it, and when it broke it."""

    lease: Lease
    broken_at: str  # the breaker's clock
    reason: str  # for people ("site a's lease expired 12 s ago")

    def check(self, where: str) -> None:
        if len(self.reason) > 300 or len(self.broken_at) > 40:
            raise ValueError(f"{where}: lease break text too long")
        parse_utc(self.broken_at)


@dataclass(frozen=True)
class FileRef:
    """One immutable file on the server (weights or optimizer state of a version)."""

    version: int
    file: str  # relative to the ring folder
    sha256: str
    size: int
    site: str  # who published it
    turn: int  # the turn that produced it

    NAMES: ClassVar = {"file": "file", "sha256": "sha256", "site": "site"}

    def check(self, where: str) -> None:
        if self.size < 0 or self.version < 1 or self.turn < 0:
            raise ValueError(f"{where}: negative size, version or turn")


@dataclass(frozen=True)
class BestWeights:
    val_loss: float
    weights: FileRef


@dataclass(frozen=True)
class Holder:
    """The site holding the lease, as recorded when it took it."""

    site: str
    token: str
    turn: int
    since: str

    NAMES: ClassVar = {"site": "site", "token": "token"}


@dataclass(frozen=True)
class TurnRecord:
    turn: int  # 0-based turn index
    round: int
    site: str
    version: int  # weights version published by this turn
    weights_file: str  # may be pruned later (keep_versions); the best and latest stay
    weights_sha256: str
    parent_version: int  # version trained from; 0 = fresh initialisation
    epochs: int
    metrics: dict[str, float]  # val_loss always; train_loss and others as the trainer reports
    n_examples: int
    improved: bool  # under the ring's convergence rule
    patience_counter: int  # the counter that rule watches, after this turn
    optimizer_carried: bool  # False when the turn started a fresh optimizer
    started_at: str
    finished_at: str
    train_s: float
    overhead_s: float  # lease + download + verify + upload + manifest
    in_place_of: str | None = None  # the site whose turn it was, when taken over after a lease break
    event: str = "turn"
    # Signed turns (signing.py): the hash of the previous turn's signed record, the
    # optimizer state published with this version, the publishing site's signature.
    optimizer_sha256: str = ""
    parent_hash: str = ""
    # Since hemarelay-ring/2 the publisher signs everything a site acts on: the sizes
    # and names of both files, the ring's settings (their hash), the model trained and,
    # for a turn taken in another site's place, the lease it broke (its evidence).
    weights_size: int = 0
    optimizer_file: str = ""
    optimizer_size: int = 0
    config_sha256: str = ""
    model_id: str = ""
    lease_break: LeaseBreak | None = None
    signature: str = ""

    NAMES: ClassVar = {
        "site": "site",
        "weights_file": "file",
        "weights_sha256": "sha256",
        "in_place_of": "site",
        "optimizer_sha256": "sha256",
        "parent_hash": "sha256",
        "optimizer_file": "file",
        "config_sha256": "sha256",
        "model_id": "model id",
        "signature": "signature",
    }

    @staticmethod
    def claims(d: dict) -> bool:
        return d.get("event") == "turn"

    def check(self, where: str) -> None:
        bad = [k for k in self.metrics if not METRIC_RE.match(k)]
        if bad:
            raise ValueError(f"{where}: bad metric {bad[0][:40]!r}")
        if "val_loss" not in self.metrics or not all(math.isfinite(v) for v in self.metrics.values()):
            raise ValueError(f"{where}: the metrics lack a finite val_loss")
        if min(self.weights_size, self.optimizer_size, self.epochs, self.n_examples) < 0:
            raise ValueError(f"{where}: a negative size or count")

    def weights_ref(self) -> FileRef:
        """The weights file this record signs, as the manifest must name it."""
        return FileRef(self.version, self.weights_file, self.weights_sha256, self.weights_size, self.site, self.turn)

    def optimizer_ref(self) -> FileRef | None:
        """The optimizer state file this record signs (None when none was published)."""
        if not self.optimizer_sha256:
            return None
        return FileRef(
            self.version, self.optimizer_file, self.optimizer_sha256, self.optimizer_size, self.site, self.turn
        )


@dataclass(frozen=True)
class RingEvent:
    event: str  # "init", "lease_break", "converged", "stopped"
    at: str
    site: str  # who recorded it
    detail: str  # one sentence for people

    NAMES: ClassVar = {"site": "site"}

    @staticmethod
    def claims(d: dict) -> bool:
        return True

    def check(self, where: str) -> None:
        if len(self.event) > 40 or len(self.detail) > 500:
            raise ValueError(f"{where}: event text too long")


@dataclass(frozen=True)
class SiteSummary:
    turns: int = 0
    last_val_loss: float | None = None
    best_val_loss: float | None = None  # this site's own best (its own validation split)
    patience_counter: int = 0  # this site's own counter (used by the per-site rule)


@dataclass(frozen=True)
class Convergence:
    rule: str  # "global-patience", "per-site-patience" or "max-turns"
    turn: int  # turns done when it was decided
    at: str
    explanation: str
