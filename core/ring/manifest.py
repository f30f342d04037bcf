"""The ring manifest: the one JSON document that says where the ring stands.

Server layout under the ring folder::

    manifest.json                      this document (replaced atomically, revision += 1)
    lease.json                         the lock of the site taking a turn (see lease.py)
    weights/v000012-a-3f2a9c.safetensors   immutable weights, one file per version
    optimizer/v000012-a-3f2a9c.safetensors optimizer state of that version
    leases/broken-<time>-<nonce>.json  leases broken after expiry (kept as evidence)

Everything in the manifest is a site name, a number, a time, a file name made
by the ring or a sha256: never a case name, path or anything from a site's
data. The manifest is read from a shared server, so parsing validates it.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Literal

from .config import START_FROM, Order, RingConfig, Rule, round_order, site_for_turn
from .errors import RingStateError
from .names import SITE_RE, check_name, printable
from .records import (
    METRIC_RE,
    BestWeights,
    Convergence,
    FileRef,
    Holder,
    LeaseBreak,
    RingEvent,
    SiteSummary,
    TurnRecord,
    parse_utc,
    utc_now,
)
from .schema import decode, encode
from .transport import Transport

__all__ = [  # the manifest's parts, importable from here as before they had modules of their own
    "START_FROM",
    "SITE_RE",
    "METRIC_RE",
    "Order",
    "Rule",
    "RingConfig",
    "round_order",
    "site_for_turn",
    "BestWeights",
    "Convergence",
    "FileRef",
    "Holder",
    "RingEvent",
    "SiteSummary",
    "TurnRecord",
    "LeaseBreak",
    "utc_now",
    "parse_utc",
    "Manifest",
    "new_manifest",
    "parse_manifest",
    "read_manifest",
]

FORMAT = "hemarelay-ring/2"
# Rings made before turn records signed all a site acts on (their settings, sizes,
# bookkeeping, lease-break evidence): read, but trusted only as far as an unsigned ring.
LEGACY_FORMATS = ("hemarelay-ring/1",)
MANIFEST = "manifest.json"
LEASE = "lease.json"
WEIGHTS_DIR = "weights"
OPTIMIZER_DIR = "optimizer"
BROKEN_LEASES_DIR = "leases"

Status = Literal["running", "converged", "stopped"]


@dataclass(frozen=True)
class Manifest:
    ring_id: str
    revision: int
    created_at: str
    updated_at: str
    config: RingConfig
    status: Status = "running"
    turns_done: int = 0
    model_id: str | None = None  # set by the first turn; other trainers are refused
    holder: Holder | None = None
    weights: FileRef | None = None
    optimizer: FileRef | None = None
    best: BestWeights | None = None
    patience_counter: int = 0  # the global counter (the paper's rule)
    per_site: dict[str, SiteSummary] = field(default_factory=dict)
    convergence: Convergence | None = None
    history: tuple[TurnRecord | RingEvent, ...] = ()
    format: str = FORMAT

    NAMES: ClassVar = {"ring_id": "ring id", "model_id": "model id"}

    def check(self, where: str) -> None:
        for s in self.per_site:
            check_name("site", s, "per_site")

    @property
    def legacy(self) -> bool:
        return self.format in LEGACY_FORMATS

    @property
    def round(self) -> int:
        return self.turns_done // len(self.config.sites)

    @property
    def next_site(self) -> str:
        return site_for_turn(self.config, self.turns_done)

    @property
    def turn_records(self) -> list[TurnRecord]:
        return [h for h in self.history if isinstance(h, TurnRecord)]

    @property
    def latest_version(self) -> int:
        return self.weights.version if self.weights else 0

    def to_bytes(self) -> bytes:
        d: dict[str, Any] = {"format": self.format}
        for k, v in encode(self).items():
            if k != "format":
                d[k] = v
            if k == "turns_done":  # derived, for people reading the file; ignored when parsed
                d["round"], d["next_site"] = self.round, self.next_site
        return (json.dumps(d, indent=1, allow_nan=False) + "\n").encode()

    def bumped(self, **changes: Any) -> "Manifest":
        """A copy with ``changes``, the next revision and a fresh ``updated_at``."""
        return replace(self, revision=self.revision + 1, updated_at=utc_now(), **changes)


def new_manifest(config: RingConfig) -> Manifest:
    config.validate()
    now = utc_now()
    sites = ", ".join(config.sites)
    return Manifest(
        ring_id=uuid.uuid4().hex,
        revision=1,
        created_at=now,
        updated_at=now,
        config=config,
        per_site={s: SiteSummary() for s in config.sites},
        history=(RingEvent("init", now, config.sites[0], f"Ring created for sites {sites}, {config.order} order."),),
    )


def parse_manifest(data: bytes, where: str) -> Manifest:
    """Validate and load ``manifest.json`` (the server is shared: every field is
    checked, :mod:`core.ring.schema`); RingStateError naming ``where`` if it is not one."""
    try:
        d = json.loads(data)
        if not isinstance(d, dict):
            raise ValueError("not a JSON object")
        if d.get("format") != FORMAT and d.get("format") not in LEGACY_FORMATS:
            raise ValueError(f"format is {printable(repr(d.get('format')))[:60]}, expected {FORMAT!r}")
        return decode(Manifest, d, "")
    except RecursionError:
        raise RingStateError(f"{where} is not a valid ring manifest (nested too deeply).") from None
    except (ValueError, TypeError, AttributeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RingStateError(f"{where} is not a valid ring manifest ({printable(exc)}).") from None


# What a site accepts to read as the manifest (re-read every poll, inside the GUI
# process): it grows by about 1 kB a turn.
MAX_MANIFEST_BYTES = 32 << 20


def read_manifest(t: Transport) -> Manifest:
    """The ring's manifest as it stands on the server, parsed and validated (at
    most :data:`MAX_MANIFEST_BYTES` read)."""
    where = t.describe(MANIFEST)
    for attempt in range(3):
        try:
            data = t.read_bytes(MANIFEST, MAX_MANIFEST_BYTES)
        except FileNotFoundError:
            raise RingStateError(
                f"No ring at {t.describe()}: {MANIFEST} not found (create one with 'hemarelay ring init')."
            ) from None
        if data.strip():
            try:
                return parse_manifest(data, where)
            except RingStateError:
                if attempt == 2:
                    raise
        elif attempt == 2:
            raise RingStateError(f"{where} is empty.")
        time.sleep(0.2)  # only ``ring init`` writes it non-atomically (exclusive create)
    raise AssertionError("unreachable")
