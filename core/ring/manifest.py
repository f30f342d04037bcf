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
import math
import random
import re
import time
import uuid
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Literal

from ..errors import ConfigError
from .errors import RingStateError
from .names import SITE_RE, check_name, printable
from .transport import Transport

FORMAT = "hemarelay-ring/1"
MANIFEST = "manifest.json"
LEASE = "lease.json"
WEIGHTS_DIR = "weights"
OPTIMIZER_DIR = "optimizer"
BROKEN_LEASES_DIR = "leases"

METRIC_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")

Order = Literal["fixed", "shuffle"]
Rule = Literal["global", "per-site"]
Status = Literal["running", "converged", "stopped"]


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


START_FROM = ("scratch", "default")


@dataclass(frozen=True)
class RingConfig:
    """Set once by ``ring init``; every site follows it."""

    sites: tuple[str, ...]
    order: Order = "fixed"  # fixed: the listed order; shuffle: a seeded permutation per round
    seed: int = 0  # shuffle order and the first turn's weight initialisation
    patience: int = 10  # turns without an improvement before the ring has converged
    min_delta: float = 1e-4  # an improvement must lower the best val loss by more than this
    convergence: Rule = "global"  # global: one counter over every turn (the paper); per-site: each site's own
    max_turns: int | None = None  # stop after this many turns whatever the losses
    epochs_per_turn: int = 1
    reset_optimizer: bool = False  # True: every turn starts a fresh optimizer (the paper's later code)
    lease_ttl_s: float = 600.0  # a lease not renewed for this long may be broken
    clock_skew_s: float = 60.0  # tolerance between site clocks when reading another site's expiry
    keep_versions: int = 5  # weights versions kept on the server besides the best
    # What the first turn trains from: "scratch" (weights drawn from ``seed``, the
    # paper) or "default" (the model shipped with the program; sites check its sha256).
    start_from: str = "scratch"
    # Each member's turn-signing public key ("ssh-ed25519 AAAA..."), fixed at ``ring init``
    # and pinned by every site at first contact (see signing.py). Empty: an unsigned ring.
    signers: dict[str, str] = field(default_factory=dict)

    def validate(self) -> "RingConfig":
        if not self.sites:
            raise ConfigError("A ring needs at least one site.")
        for s in self.sites:
            if not SITE_RE.match(s):
                raise ConfigError(
                    f"Site name '{s}': use 1-32 letters, digits, '-' or '_' "
                    f"(it is stored on the server: no patient or path information)."
                )
        if len(set(self.sites)) != len(self.sites):
            raise ConfigError(f"Site names must be unique: {', '.join(self.sites)}.")
        if self.order not in ("fixed", "shuffle"):
            raise ConfigError(f"Ring order '{self.order}': use fixed or shuffle.")
        if self.convergence not in ("global", "per-site"):
            raise ConfigError(f"Convergence rule '{self.convergence}': use global or per-site.")
        if self.patience < 1 or self.epochs_per_turn < 1 or self.keep_versions < 1:
            raise ConfigError("Patience, epochs per turn and kept versions must be at least 1.")
        if self.max_turns is not None and self.max_turns < 1:
            raise ConfigError("The maximum number of turns must be at least 1.")
        if not (self.min_delta >= 0 and math.isfinite(self.min_delta)):
            raise ConfigError("The minimum improvement must be a number >= 0.")
        if not (self.lease_ttl_s > 0 and self.clock_skew_s >= 0):
            raise ConfigError("The lease time must be > 0 s and the clock skew >= 0 s.")
        if self.start_from not in START_FROM:
            raise ConfigError(f"Start from '{self.start_from}': use {' or '.join(START_FROM)}.")
        if self.signers:
            from .keys import check_public_key

            if set(self.signers) != set(self.sites):
                raise ConfigError(
                    f"Every site needs exactly one signing key: keys given for "
                    f"{', '.join(sorted(self.signers)) or 'none'}, sites are "
                    f"{', '.join(self.sites)}."
                )
            for s, key in self.signers.items():
                check_public_key(key, f"the signing key of site {s}")
        return self


# -- whose turn it is: the ring order, fixed or a seeded shuffle per round --


def round_order(config: RingConfig, round_index: int) -> list[str]:
    """The sites in the order they train during one round (each site once)."""
    sites = list(config.sites)
    if config.order == "fixed" or len(sites) == 1:
        return sites
    previous_last = None
    for r in range(round_index + 1):
        order = sites[:]
        random.Random(f"{config.seed}:{r}").shuffle(order)
        # The same site twice in a row (end of one round, start of the next)
        # would be a turn without a transfer: swap it one place later.
        if order[0] == previous_last:
            order[0], order[1] = order[1], order[0]
        previous_last = order[-1]
    return order


def site_for_turn(config: RingConfig, turn: int) -> str:
    """The site that takes turn ``turn`` (0-based) of the ring."""
    n = len(config.sites)
    return round_order(config, turn // n)[turn % n]


@dataclass(frozen=True)
class FileRef:
    """One immutable file on the server (weights or optimizer state of a version)."""

    version: int
    file: str  # relative to the ring folder
    sha256: str
    size: int
    site: str  # who published it
    turn: int  # the turn that produced it


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


@dataclass(frozen=True)
class RingEvent:
    event: str  # "init", "lease_break", "converged", "stopped"
    at: str
    site: str  # who recorded it
    detail: str  # one sentence for people


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
        for k, v in asdict(self).items():
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


# -- parsing (the server is shared: check every field) ------------------------


def _req(d: dict, key: str, types: type | tuple[type, ...], where: str) -> Any:
    if key not in d:
        raise ValueError(f"{where}: '{key}' missing")
    v = d[key]
    if types is float and isinstance(v, int) and not isinstance(v, bool):
        v = float(v)
    if not isinstance(v, types) or (isinstance(v, bool) and types in (int, float)):
        raise ValueError(f"{where}: '{key}' has the wrong type")
    return v


def _opt(d: dict, key: str, types: type | tuple[type, ...], where: str) -> Any:
    return None if d.get(key) is None else _req(d, key, types, where)


def _file_ref(d: Any, where: str) -> FileRef | None:
    if d is None:
        return None
    if not isinstance(d, dict):
        raise ValueError(f"{where} is not an object")
    ref = FileRef(
        _req(d, "version", int, where),
        _req(d, "file", str, where),
        _req(d, "sha256", str, where),
        _req(d, "size", int, where),
        _req(d, "site", str, where),
        _req(d, "turn", int, where),
    )
    check_name("file", ref.file, f"{where}.file")
    check_name("sha256", ref.sha256, f"{where}.sha256")
    check_name("site", ref.site, f"{where}.site")
    if ref.size < 0 or ref.version < 1 or ref.turn < 0:
        raise ValueError(f"{where}: negative size, version or turn")
    return ref


def _metrics(d: Any, where: str) -> dict[str, float]:
    if not isinstance(d, dict):
        raise ValueError(f"{where}: metrics is not an object")
    out = {}
    for k, v in d.items():
        if not METRIC_RE.match(k) or isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ValueError(f"{where}: bad metric {k!r}")
        out[k] = float(v)
    return out


def _history_item(d: Any, where: str) -> TurnRecord | RingEvent:
    if not isinstance(d, dict):
        raise ValueError(f"{where} is not an object")
    if d.get("event") == "turn":
        rec = TurnRecord(
            turn=_req(d, "turn", int, where),
            round=_req(d, "round", int, where),
            site=_req(d, "site", str, where),
            version=_req(d, "version", int, where),
            weights_file=_req(d, "weights_file", str, where),
            weights_sha256=_req(d, "weights_sha256", str, where),
            parent_version=_req(d, "parent_version", int, where),
            epochs=_req(d, "epochs", int, where),
            metrics=_metrics(d.get("metrics"), where),
            n_examples=_req(d, "n_examples", int, where),
            improved=_req(d, "improved", bool, where),
            patience_counter=_req(d, "patience_counter", int, where),
            optimizer_carried=_req(d, "optimizer_carried", bool, where),
            started_at=_req(d, "started_at", str, where),
            finished_at=_req(d, "finished_at", str, where),
            train_s=_req(d, "train_s", float, where),
            overhead_s=_req(d, "overhead_s", float, where),
            in_place_of=_opt(d, "in_place_of", str, where),
            optimizer_sha256=d.get("optimizer_sha256") or "",
            parent_hash=d.get("parent_hash") or "",
            signature=d.get("signature") or "",
        )
        check_name("site", rec.site, f"{where}.site")
        check_name("file", rec.weights_file, f"{where}.weights_file")
        check_name("sha256", rec.weights_sha256, f"{where}.weights_sha256")
        if rec.in_place_of is not None:
            check_name("site", rec.in_place_of, f"{where}.in_place_of")
        for k in ("optimizer_sha256", "parent_hash"):
            if getattr(rec, k):
                check_name("sha256", getattr(rec, k), f"{where}.{k}")
        if not isinstance(rec.signature, str) or len(rec.signature) > 200:
            raise ValueError(f"{where}: signature is not a short string")
        return rec
    ev = RingEvent(
        _req(d, "event", str, where),
        _req(d, "at", str, where),
        _req(d, "site", str, where),
        _req(d, "detail", str, where),
    )
    check_name("site", ev.site, f"{where}.site")
    if len(ev.event) > 40 or len(ev.detail) > 500:
        raise ValueError(f"{where}: event text too long")
    return ev


def parse_manifest(data: bytes, where: str) -> Manifest:
    """Validate and load ``manifest.json``; RingStateError naming ``where`` if it is not one."""
    try:
        d = json.loads(data)
        if not isinstance(d, dict):
            raise ValueError("not a JSON object")
        if d.get("format") != FORMAT:
            raise ValueError(f"format is {d.get('format')!r}, expected {FORMAT!r}")
        c = _req(d, "config", dict, "config")
        config = RingConfig(
            sites=tuple(_req(c, "sites", list, "config")),
            order=_req(c, "order", str, "config"),
            seed=_req(c, "seed", int, "config"),
            patience=_req(c, "patience", int, "config"),
            min_delta=_req(c, "min_delta", float, "config"),
            convergence=_req(c, "convergence", str, "config"),
            max_turns=_opt(c, "max_turns", int, "config"),
            epochs_per_turn=_req(c, "epochs_per_turn", int, "config"),
            reset_optimizer=_req(c, "reset_optimizer", bool, "config"),
            lease_ttl_s=_req(c, "lease_ttl_s", float, "config"),
            clock_skew_s=_req(c, "clock_skew_s", float, "config"),
            keep_versions=_req(c, "keep_versions", int, "config"),
            start_from=_opt(c, "start_from", str, "config") or "scratch",
            signers=dict(_opt(c, "signers", dict, "config") or {}),
        )
        try:
            config.validate()
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        h = _opt(d, "holder", dict, "manifest")
        holder = (
            None
            if h is None
            else Holder(
                _req(h, "site", str, "holder"),
                _req(h, "token", str, "holder"),
                _req(h, "turn", int, "holder"),
                _req(h, "since", str, "holder"),
            )
        )
        if holder is not None:
            check_name("site", holder.site, "holder.site")
            check_name("token", holder.token, "holder.token")
        b = _opt(d, "best", dict, "manifest")
        best = (
            None
            if b is None
            else BestWeights(_req(b, "val_loss", float, "best"), _file_ref(b.get("weights"), "best.weights"))
        )  # type: ignore[arg-type]
        if best is not None and best.weights is None:
            raise ValueError("best has no weights")
        per_site = {}
        for s, v in _req(d, "per_site", dict, "manifest").items():
            check_name("site", s, "per_site")
            if not isinstance(v, dict):
                raise ValueError(f"per_site.{s} is not an object")
            per_site[s] = SiteSummary(
                _req(v, "turns", int, s),
                _opt(v, "last_val_loss", float, s),
                _opt(v, "best_val_loss", float, s),
                _req(v, "patience_counter", int, s),
            )
        cv = _opt(d, "convergence", dict, "manifest")
        convergence = (
            None
            if cv is None
            else Convergence(
                _req(cv, "rule", str, "convergence"),
                _req(cv, "turn", int, "convergence"),
                _req(cv, "at", str, "convergence"),
                _req(cv, "explanation", str, "convergence"),
            )
        )
        status = _req(d, "status", str, "manifest")
        if status not in ("running", "converged", "stopped"):
            raise ValueError(f"status {status!r}")
        check_name("ring id", _req(d, "ring_id", str, "manifest"), "ring_id")
        model_id = _opt(d, "model_id", str, "manifest")
        if model_id is not None:
            check_name("model id", model_id, "model_id")
        return Manifest(
            ring_id=_req(d, "ring_id", str, "manifest"),
            revision=_req(d, "revision", int, "manifest"),
            created_at=_req(d, "created_at", str, "manifest"),
            updated_at=_req(d, "updated_at", str, "manifest"),
            config=config,
            status=status,  # type: ignore[arg-type]
            turns_done=_req(d, "turns_done", int, "manifest"),
            model_id=model_id,
            holder=holder,
            weights=_file_ref(d.get("weights"), "weights"),
            optimizer=_file_ref(d.get("optimizer"), "optimizer"),
            best=best,
            patience_counter=_req(d, "patience_counter", int, "manifest"),
            per_site=per_site,
            convergence=convergence,
            history=tuple(
                _history_item(x, f"history[{i}]") for i, x in enumerate(_req(d, "history", list, "manifest"))
            ),
        )
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
