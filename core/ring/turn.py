"""One site's turn in the ring, as a progress generator.

1. Read the manifest; wait until the ring order names this site (or a lease
   that stalled past its expiry lets this site take the turn in its place).
2. Take the lease (exclusive create), record the holder in the manifest.
3. Download the weights (and optimizer state unless the ring resets it) and
   check their sha256.
4. Train ``k`` epochs with the site's :class:`TurnTrainer`, renewing the lease
   between its progress events.
5. Upload the new weights under a temp name and rename them into place, swap
   the manifest (compare-and-swap under the lease), prune, release the lease.

A crash at any point leaves the server readable (every visible file is
complete) and the ring resumable: a half-done turn publishes nothing, and its
lease is broken after expiry (or at once by a restart on the same machine).
Lost connections are retried with backoff for ``retry_for_s``; every other
error releases the lease and stops with a one-line message.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Generator

from ..progress import CancelToken, Progress, relay
from .acquire import STAGE_LEASE as STAGE_LEASE  # the stages a turn reports, importable from here
from .acquire import BrokenLease, take_lease
from .audit import AuditLog
from .codec import decode_optimizer_state, decode_weights, encode_optimizer_state, encode_weights, sha256_hex
from .config import MAX_EPOCHS_PER_TURN, capped_epochs
from .convergence import judge_turn
from .errors import RingStateError, ServerError
from .first_contact import pinned_or_own
from .lease import Lease, LeaseWatch, release
from .manifest import (
    OPTIMIZER_DIR,
    WEIGHTS_DIR,
    BestWeights,
    FileRef,
    Holder,
    LeaseBreak,
    Manifest,
    RingEvent,
    TurnRecord,
    read_manifest,
    utc_now,
)
from .retry import STAGE_RETRY as STAGE_RETRY
from .retry import LeaseKeeper, Retry, sleep_unless_cancelled
from .server import MAX_WEIGHTS_BYTES, commit_manifest, iter_download_verified, prune, versioned_name
from .signing import TurnSigner, Verified, check_own_key, config_sha256, record_hash, sign_record, verify_and_record
from .trainer import TurnInput, TurnResult, TurnTrainer, check_result
from .transport import Transport
from .trust import TrustStore

log = logging.getLogger(__name__)

STAGE_WAIT = "Waiting for this site's turn"
STAGE_DOWNLOAD = "Downloading weights"
STAGE_TRAIN = "Training"
STAGE_UPLOAD = "Uploading weights"
STAGE_PUBLISH = "Publishing"
STAGE_RELEASE = "Releasing the ring lease"


@dataclass(frozen=True)
class SiteOptions:
    site: str
    epochs_per_turn: int | None = None  # None: the ring's setting
    poll_s: float = 5.0  # how often a waiting site reads the manifest
    retry_for_s: float = 600.0  # how long lost connections are retried before giving up
    backoff_s: float = 1.0  # first retry delay, doubled up to backoff_max_s
    backoff_max_s: float = 30.0
    obsolete_grace_s: float = 10.0  # wait before clearing a lease left by a published turn
    audit_path: Path | None = None  # None: no audit log
    # Signed turns (signing.py): this site's key, where it pins the ring's keys and its
    # verified head, and whether it joins unsigned rings at all.
    signer: TurnSigner | None = None
    trust_dir: Path | None = None  # None: keys checked against the manifest only (no pinning)
    require_signed: bool = False
    # The site decides: the ring's epochs per turn is a suggestion within this cap.
    max_epochs_per_turn: int = MAX_EPOCHS_PER_TURN
    share_optimizer: bool = False  # True: Adam's moments go to the next site (opt-in: they describe this data)
    max_weights_bytes: int = MAX_WEIGHTS_BYTES


@dataclass(frozen=True)
class TurnTimings:
    lease_s: float = 0.0  # lease + holder record in the manifest
    download_s: float = 0.0  # includes sha256 check and decoding
    train_s: float = 0.0
    upload_s: float = 0.0  # includes encoding
    publish_s: float = 0.0  # manifest swap, prune, release
    bytes_down: int = 0
    bytes_up: int = 0

    @property
    def overhead_s(self) -> float:
        return self.lease_s + self.download_s + self.upload_s + self.publish_s


@dataclass(frozen=True)
class TurnOutcome:
    trained: bool  # False when the ring had already ended
    manifest: Manifest  # the ring after this call
    record: TurnRecord | None = None
    timings: TurnTimings | None = None


@dataclass(frozen=True)
class SiteRun:
    turns: list[TurnOutcome] = field(default_factory=list)
    manifest: Manifest | None = None


def take_turn(
    transport: Transport, trainer: TurnTrainer, opts: SiteOptions, token: CancelToken
) -> Generator[Progress, None, TurnOutcome]:
    """Wait for this site's turn, train, publish. Returns without training when
    the ring has converged or stopped. Call ``transport.connect()`` first to fail
    fast on a server that cannot be reached at all; from here on, lost connections
    are retried for ``opts.retry_for_s``."""
    audit = AuditLog(opts.audit_path, opts.site, transport.describe())
    retry = Retry(token, opts.retry_for_s, opts.backoff_s, opts.backoff_max_s)
    yield from retry.call(transport.connect)
    watch = LeaseWatch()
    while True:
        token.raise_if_cancelled()
        m = yield from retry.call(lambda: read_manifest(transport))
        _verified_chain(m, opts)  # before acting on anything it says, its status included
        if m.status != "running":
            return TurnOutcome(False, m)
        _check_before_training(m, opts, trainer, transport)
        lease_clock = time.monotonic()
        attempt = yield from take_lease(
            transport, m, opts.site, watch, opts.obsolete_grace_s, retry, audit, opts.signer
        )
        if attempt.lease is None:
            if not attempt.look_again_now:
                yield Progress(
                    STAGE_WAIT,
                    message=f"Turn {m.turns_done + 1} (round {m.round + 1}) belongs to site "
                    f"{m.next_site}; {attempt.waiting_for}.",
                )
                sleep_unless_cancelled(opts.poll_s, token)
            continue
        audit.record("lease", detail=f"turn {attempt.lease.turn + 1}")
        held = _HeldTurn(transport, trainer, opts, token, retry, audit, attempt.lease)
        outcome = yield from held.run(attempt.broken, lease_clock)
        if outcome is not None:
            return outcome
        # The manifest moved on while we took the lease (a late publisher): wait again.


def _check_before_training(m: Manifest, opts: SiteOptions, trainer: TurnTrainer, transport: Transport) -> None:
    """This site is a member with the ring's model, and this site's key is the one the
    ring lists for it (the history was verified just before)."""
    if opts.site not in m.config.sites:
        raise RingStateError(
            f"Site '{opts.site}' is not a member of the ring at {transport.describe()} "
            f"(members: {', '.join(m.config.sites)})."
        )
    if m.model_id is not None and m.model_id != trainer.model_id:
        raise RingStateError(
            f"The ring at {transport.describe()} trains model '{m.model_id}', but this "
            f"site's trainer is '{trainer.model_id}'."
        )
    check_own_key(m, opts.signer, opts.site)


def _verified_chain(m: Manifest, opts: SiteOptions) -> Verified:
    """The ring's history checked against this site's pin (signatures, settings, head; the
    pin of a ring listing only this site's own key is made here, any other needs a person:
    core/ring/first_contact.py) and its new head recorded; refused as a whole otherwise."""
    store = TrustStore(opts.trust_dir) if opts.trust_dir else None
    if store is not None:
        pinned_or_own(m, store, opts.signer)
    verified = verify_and_record(m, store, opts.require_signed)
    verified.raise_problem()
    return verified


def epochs_for_turn(ring_epochs: int, opts: SiteOptions) -> int:
    """The site's own setting, or the ring's suggestion within the site's cap (one rule
    for the ring and the NVFlare client: :func:`core.ring.config.capped_epochs`)."""
    return capped_epochs(ring_epochs, opts.epochs_per_turn, opts.max_epochs_per_turn)


@dataclass(frozen=True)
class _Holding:
    manifest: Manifest  # with this site recorded as the holder
    in_place_of: str | None  # the site whose turn this site took over, if any
    evidence: LeaseBreak | None  # the lease broken to take it over (signed into the record)


@dataclass(frozen=True)
class _Downloaded:
    weights: dict | None
    optimizer_state: dict | None
    bytes: int


@dataclass(frozen=True)
class _Uploaded:
    weights: FileRef
    optimizer: FileRef | None
    bytes: int


class _Stopwatch:
    """Seconds since the last lap."""

    def __init__(self, start: float | None = None) -> None:
        self.last = time.monotonic() if start is None else start

    def lap(self) -> float:
        now = time.monotonic()
        seconds, self.last = now - self.last, now
        return seconds


class _HeldTurn:
    """Steps 2-5 of the module docstring for a site that holds the lease, one
    method per step. Any error before the manifest swap releases the lease."""

    def __init__(
        self,
        transport: Transport,
        trainer: TurnTrainer,
        opts: SiteOptions,
        token: CancelToken,
        retry: Retry,
        audit: AuditLog,
        lease: Lease,
    ) -> None:
        self.transport, self.trainer, self.opts, self.token = transport, trainer, opts, token
        self.retry, self.audit, self.site = retry, audit, opts.site
        self.keeper = LeaseKeeper(transport, lease, lease.ttl_s, opts.signer)

    def run(self, broken: BrokenLease | None, lease_clock: float) -> Generator[Progress, None, TurnOutcome | None]:
        """Steps 2-5; None when the ring moved on meanwhile (a late publisher), to wait again."""
        self.retry.tick = self.keeper.tick
        clock = _Stopwatch(lease_clock)
        try:
            holding = yield from self.record_holder(broken)
            if holding is None:
                return None
            m = holding.manifest
            _verified_chain(m, self.opts)  # what we train from must be what its site signed
            lease_s = clock.lap()
            got = yield from self.download(m)
            download_s = clock.lap()
            epochs = epochs_for_turn(m.config.epochs_per_turn, self.opts)
            result = yield from self.train(m, got, epochs)
            train_s = clock.lap()
            up = yield from self.upload(m, result)
            upload_s = clock.lap()
            record = self.new_record(holding, got, result, up, epochs, train_s, lease_s + download_s + upload_s)
            m, record = yield from self.publish(m, record, up)
        except Exception:
            _release_quietly(self.transport, self.keeper.lease)
            raise
        finally:
            self.retry.tick = lambda: None
        yield from self.finish(m, record)
        timings = TurnTimings(lease_s, download_s, train_s, upload_s, clock.lap(), got.bytes, up.bytes)
        return TurnOutcome(True, m, record, timings)

    def record_holder(self, broken: BrokenLease | None) -> Generator[Progress, None, _Holding | None]:
        """Step 2: name this site as the holder in the manifest (and the lease it
        broke, if any). None when the ring moved on while the lease was taken."""
        transport, site, lease = self.transport, self.site, self.keeper.lease
        m = yield from self.retry.call(lambda: read_manifest(transport))
        if m.status != "running" or m.turns_done != lease.turn:
            yield from self.retry.call(lambda: release(transport, self.keeper.lease))
            return None
        started = utc_now()
        events: tuple[RingEvent, ...] = ()
        rightful = m.next_site
        in_place_of = rightful if broken is not None and rightful != site else None
        evidence = None
        if in_place_of is not None and broken is not None and broken.view.lease is not None:
            evidence = LeaseBreak(broken.view.lease, started, broken.reason)
        if broken is not None:
            old = broken.view.lease
            detail = f"Site {site} broke the lease of site {old.site if old else '(unreadable)'} ({broken.reason})" + (
                f" and takes turn {m.turns_done + 1} in place of site {rightful}." if in_place_of else "."
            )
            events = (RingEvent("lease_break", started, site, detail),)
        yield Progress(STAGE_LEASE, message=f"Site {site} holds the ring lease for turn {m.turns_done + 1}.")
        expected = m
        m = m.bumped(holder=Holder(site, lease.token, lease.turn, started), history=m.history + events)
        m = yield from self.retry.call(lambda: commit_manifest(transport, expected, m, self.keeper.lease))
        return _Holding(m, in_place_of, evidence)

    def download(self, m: Manifest) -> Generator[Progress, None, _Downloaded]:
        """Step 3: the weights, and the optimizer state unless the ring resets it, sha256-checked."""
        weights = opt_state = None
        size = 0
        if m.weights is not None:
            data = yield from self._fetch(m.weights, "weights")
            weights = decode_weights(data, self.transport.describe(m.weights.file))
            size += len(data)
        if not m.config.reset_optimizer and m.optimizer is not None:
            data = yield from self._fetch(m.optimizer, "optimizer state")
            opt_state = decode_optimizer_state(data, self.transport.describe(m.optimizer.file))
            size += len(data)
        return _Downloaded(weights, opt_state, size)

    def _fetch(self, ref: FileRef, what: str) -> Generator[Progress, None, bytes]:
        data = yield from self.retry.transfer(
            lambda: iter_download_verified(self.transport, ref, what, self.opts.max_weights_bytes),
            STAGE_DOWNLOAD,
            ref.size,
        )
        self.audit.record("download", file=ref.file, version=ref.version, sha256=ref.sha256, bytes=len(data))
        return data

    def train(self, m: Manifest, got: _Downloaded, epochs: int) -> Generator[Progress, None, TurnResult]:
        """Step 4: ``epochs`` epochs on this site's data, renewing the lease between events."""
        yield Progress(STAGE_TRAIN, message=f"Turn {m.turns_done + 1}: {epochs} epoch(s) on site {self.site}'s data.")
        inp = TurnInput(
            got.weights, got.optimizer_state, epochs, m.config.seed, m.turns_done, self.site, m.config.start_from
        )
        result = yield from relay(self.trainer.train_turn(inp, self.token), lambda _: self.keeper.tick())
        return check_result(result, self.trainer.model_id)

    def upload(self, m: Manifest, result: TurnResult) -> Generator[Progress, None, _Uploaded]:
        """Step 5a: the new weights (and optimizer state) under temp names, renamed into place."""
        version = m.latest_version + 1
        meta = {
            "ring_id": m.ring_id,
            "version": str(version),
            "site": self.site,
            "turn": str(m.turns_done),
            "model_id": self.trainer.model_id,
        }
        weights = yield from self._put(m, WEIGHTS_DIR, encode_weights(result.weights, meta))
        optimizer = None
        if not m.config.reset_optimizer and self.opts.share_optimizer and result.optimizer_state is not None:
            optimizer = yield from self._put(m, OPTIMIZER_DIR, encode_optimizer_state(result.optimizer_state, meta))
        return _Uploaded(weights, optimizer, weights.size + (optimizer.size if optimizer else 0))

    def _put(self, m: Manifest, folder: str, data: bytes) -> Generator[Progress, None, FileRef]:
        version = m.latest_version + 1
        ref = FileRef(
            version, versioned_name(folder, version, self.site), sha256_hex(data), len(data), self.site, m.turns_done
        )
        yield from self.retry.transfer(
            lambda: self.transport.iter_write_atomic(ref.file, data), STAGE_UPLOAD, len(data)
        )
        self.audit.record("upload", file=ref.file, version=version, sha256=ref.sha256, bytes=len(data))
        return ref

    def new_record(
        self,
        holding: _Holding,
        got: _Downloaded,
        result: TurnResult,
        up: _Uploaded,
        epochs: int,
        train_s: float,
        overhead_s: float,
    ) -> TurnRecord:
        """This turn's record, before convergence is judged and it is signed (publish)."""
        m = holding.manifest
        return TurnRecord(
            turn=m.turns_done,
            round=m.round,
            site=self.site,
            version=up.weights.version,
            weights_file=up.weights.file,
            weights_sha256=up.weights.sha256,
            parent_version=m.latest_version,
            epochs=epochs,
            metrics={k: float(v) for k, v in result.metrics.items()},
            n_examples=result.n_examples,
            improved=False,
            patience_counter=0,  # set by publish, from the convergence verdict
            optimizer_carried=got.optimizer_state is not None,
            started_at=m.holder.since if m.holder else utc_now(),
            finished_at=utc_now(),
            train_s=round(train_s, 3),
            overhead_s=round(overhead_s, 3),
            in_place_of=holding.in_place_of,
            optimizer_sha256=up.optimizer.sha256 if up.optimizer else "",
            parent_hash=record_hash(m.ring_id, m.turn_records[-1], m.format) if m.turn_records else "",
            weights_size=up.weights.size,
            optimizer_file=up.optimizer.file if up.optimizer else "",
            optimizer_size=up.optimizer.size if up.optimizer else 0,
            config_sha256=config_sha256(m.config),
            model_id=self.trainer.model_id,
            lease_break=holding.evidence,
        )

    def publish(
        self, m: Manifest, record: TurnRecord, up: _Uploaded
    ) -> Generator[Progress, None, tuple[Manifest, TurnRecord]]:
        """Step 5b: judge convergence, sign the record (on a signed ring) and swap the
        manifest (compare-and-swap under the lease); our own record then becomes
        this site's verified head."""
        yield Progress(STAGE_PUBLISH, message=f"Publishing weights version {record.version}.")
        val = float(record.metrics["val_loss"])
        verdict = judge_turn(m, self.site, val, record.finished_at)
        record = replace(record, improved=verdict.improved, patience_counter=verdict.patience_counter)
        if self.opts.signer is not None and m.config.signers:
            record = sign_record(self.opts.signer, m, record)
        history = m.history + (record,)
        status = m.status
        if verdict.convergence is not None:
            status = "converged" if verdict.convergence.rule != "max-turns" else "stopped"
            history += (RingEvent(status, record.finished_at, self.site, verdict.convergence.explanation),)
        new = m.bumped(
            turns_done=m.turns_done + 1,
            holder=None,
            weights=up.weights,
            optimizer=up.optimizer,
            best=BestWeights(val, up.weights) if verdict.global_improved else m.best,
            patience_counter=verdict.global_counter,
            per_site=verdict.per_site,
            status=status,
            convergence=verdict.convergence,
            history=history,
            model_id=m.model_id or self.trainer.model_id,
        )
        new = yield from self.retry.call(lambda: commit_manifest(self.transport, m, new, self.keeper.lease))
        self.audit.record(
            "publish",
            file=up.weights.file,
            version=record.version,
            sha256=up.weights.sha256,
            detail=f"turn {record.turn + 1}, val_loss {val:.6g}",
        )
        if new.config.signers:  # our own record becomes this site's verified head
            try:
                _verified_chain(new, self.opts)
            except RingStateError as exc:  # published already: say so, never undo it
                log.warning("could not record this site's own turn as its verified head: %s", exc)
        return new, record

    def finish(self, m: Manifest, record: TurnRecord) -> Generator[Progress, None, None]:
        """Step 5c, after publishing: prune old files, release the lease. A failure
        here leaves a finished turn and, at worst, a lease that the next site
        clears as obsolete."""
        try:
            deleted = prune(self.transport, m)
            if deleted:
                log.info("pruned %d old files from the ring server", len(deleted))
        except ServerError as exc:
            log.warning("could not prune old ring files: %s", exc)
        yield Progress(STAGE_RELEASE)
        yield from self.retry.call(lambda: release(self.transport, self.keeper.lease))
        self.audit.record("release", detail=f"turn {record.turn + 1}")


def _release_quietly(transport: Transport, lease: Lease) -> None:
    try:
        release(transport, lease)
    except ServerError as exc:
        log.warning("could not release the ring lease (it will expire): %s", exc)


def run_site(
    transport: Transport, trainer: TurnTrainer, opts: SiteOptions, token: CancelToken, wait: bool
) -> Generator[Progress, None, SiteRun]:
    """One turn, or with ``wait`` turns until the ring converges or stops."""
    turns: list[TurnOutcome] = []
    while True:
        outcome = yield from take_turn(transport, trainer, opts, token)
        if outcome.trained:
            turns.append(outcome)
        if not wait or outcome.manifest.status != "running":
            return SiteRun(turns, outcome.manifest)
