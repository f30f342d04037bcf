"""The manifest's parts: files, the holder, turn records and events, per-site counts.

Each is a frozen dataclass whose annotations are its schema on the server
(:mod:`core.ring.schema`): ``NAMES`` lists the fields that are names from the
server (checked by :func:`core.ring.names.check_name`), ``check`` what the
types alone do not say.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

METRIC_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


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
    signature: str = ""

    NAMES: ClassVar = {
        "site": "site",
        "weights_file": "file",
        "weights_sha256": "sha256",
        "in_place_of": "site",
        "optimizer_sha256": "sha256",
        "parent_hash": "sha256",
    }

    @staticmethod
    def claims(d: dict) -> bool:
        return d.get("event") == "turn"

    def check(self, where: str) -> None:
        bad = [k for k in self.metrics if not METRIC_RE.match(k)]
        if bad:
            raise ValueError(f"{where}: bad metric {bad[0][:40]!r}")
        if len(self.signature) > 200:
            raise ValueError(f"{where}: signature is not a short string")


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
