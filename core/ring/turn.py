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
from typing import Callable, Generator, Iterator, TypeVar

from ..progress import CancelToken, Progress, relay
from .audit import AuditLog
from .codec import (
    decode_optimizer_state,
    decode_weights,
    encode_optimizer_state,
    encode_weights,
    sha256_hex,
    verify_sha256,
)
from .convergence import judge_turn
from .errors import RingStateError, ServerError, ServerUnreachableError
from .lease import (
    Lease,
    LeaseView,
    LeaseWatch,
    break_lease,
    judge_lease,
    new_lease,
    read_lease,
    release,
    renew,
    try_acquire,
)
from .manifest import (
    OPTIMIZER_DIR,
    WEIGHTS_DIR,
    BestWeights,
    FileRef,
    Holder,
    Manifest,
    RingEvent,
    TurnRecord,
    read_manifest,
    utc_now,
)
from .server import MAX_WEIGHTS_BYTES, commit_manifest, prune, size_cap, versioned_name
from .signing import TrustStore, TurnSigner, Verified, check_own_key, record_hash, sign_record, verify_chain
from .trainer import TurnInput, TurnResult, TurnTrainer, check_result
from .transport import Transport

log = logging.getLogger(__name__)
T = TypeVar("T")

STAGE_WAIT = "Waiting for this site's turn"
STAGE_LEASE = "Taking the ring lease"
STAGE_DOWNLOAD = "Downloading weights"
STAGE_TRAIN = "Training"
STAGE_UPLOAD = "Uploading weights"
STAGE_PUBLISH = "Publishing"
STAGE_RELEASE = "Releasing the ring lease"
STAGE_RETRY = "Ring server unreachable"


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
    max_epochs_per_turn: int = 20
    upload_optimizer: bool = True  # False: Adam's moments never leave the site
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


def _sleep(seconds: float, token: CancelToken) -> None:
    end = time.monotonic() + seconds
    while True:
        token.raise_if_cancelled()
        left = end - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(left, 0.1))


class _Retry:
    """Runs server operations, retrying lost connections with exponential backoff."""

    def __init__(self, opts: SiteOptions, token: CancelToken) -> None:
        self.opts, self.token = opts, token
        self.tick: Callable[[], None] = lambda: None  # lease renewal hook while holding it

    def _waits(self) -> Iterator[float]:
        delay, deadline = self.opts.backoff_s, time.monotonic() + self.opts.retry_for_s
        while time.monotonic() + delay <= deadline:
            yield delay
            delay = min(delay * 2, self.opts.backoff_max_s)

    def _backoff(self, exc: ServerUnreachableError, waits: Iterator[float]) -> Generator[Progress, None, None]:
        delay = next(waits, None)
        if delay is None:
            raise ServerUnreachableError(f"{exc} Gave up after retrying for {self.opts.retry_for_s:g} s.") from exc
        log.warning("%s; retrying in %.1f s", exc, delay)
        yield Progress(STAGE_RETRY, message=f"{exc} Retrying in {delay:.0f} s.")
        _sleep(delay, self.token)

    def call(self, fn: Callable[[], T]) -> Generator[Progress, None, T]:
        waits = self._waits()
        while True:
            try:
                return fn()
            except ServerUnreachableError as exc:
                yield from self._backoff(exc, waits)

    def transfer(
        self, make: Callable[[], Generator[int, None, T] | Iterator[int]], stage: str, total: int
    ) -> Generator[Progress, None, T]:
        """Run a chunked read/write, yielding byte progress; restarted from scratch after a drop."""
        waits = self._waits()
        while True:
            try:
                return (
                    yield from relay(
                        make(),
                        lambda _: self.tick(),
                        lambda done: Progress(
                            stage, done=float(done), total=float(total), message=f"{_size(done)} of {_size(total)}"
                        ),
                    )
                )
            except ServerUnreachableError as exc:
                yield from self._backoff(exc, waits)


def _size(n: float) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"


class _LeaseKeeper:
    """Renews our lease when a third of its time has passed; called between events."""

    def __init__(self, t: Transport, lease: Lease, ttl_s: float) -> None:
        self.t, self.lease, self.ttl_s = t, lease, ttl_s
        self.last = time.monotonic()

    def tick(self) -> None:
        if time.monotonic() - self.last < self.ttl_s / 3:
            return
        try:
            self.lease = renew(self.t, self.lease, self.ttl_s)
            self.last = time.monotonic()
        except ServerUnreachableError as exc:  # try again at the next event; expiry is far
            log.warning("could not renew the ring lease: %s", exc)


def take_turn(
    t: Transport, trainer: TurnTrainer, opts: SiteOptions, token: CancelToken
) -> Generator[Progress, None, TurnOutcome]:
    """Wait for this site's turn, train, publish. Returns without training when
    the ring has converged or stopped. Call ``t.connect()`` first to fail fast on
    a server that cannot be reached at all; from here on, lost connections are
    retried for ``opts.retry_for_s``."""
    audit = AuditLog(opts.audit_path, opts.site, t.describe())
    retry = _Retry(opts, token)
    yield from retry.call(t.connect)
    watch = LeaseWatch()
    site = opts.site

    while True:  # wait for the turn, take the lease
        token.raise_if_cancelled()
        m = yield from retry.call(lambda: read_manifest(t))
        if m.status != "running":
            return TurnOutcome(False, m)
        _check_member(m, site, trainer, t)
        _verified_chain(m, opts)
        check_own_key(m, opts.signer, site)
        rightful = m.next_site
        view = yield from retry.call(lambda: read_lease(t))
        t_lease = time.monotonic()
        lease: Lease | None = None
        broken: tuple[LeaseView, str] | None = None
        if view is None:
            if rightful == site:
                candidate = new_lease(site, m.turns_done, m.config.lease_ttl_s)
                if (yield from retry.call(lambda: try_acquire(t, candidate))):
                    lease = candidate
                else:
                    continue
            waiting_for = f"waiting for site {rightful} to take it"
        else:
            verdict = judge_lease(view, m, watch, opts.obsolete_grace_s)
            obsolete = view.lease is not None and view.lease.turn < m.turns_done
            waiting_for = verdict.reason
            if verdict.breakable and (rightful == site or not obsolete):
                yield Progress(STAGE_LEASE, message=f"Breaking the ring lease: {verdict.reason}.")
                if (yield from retry.call(lambda: break_lease(t, view, site))):
                    audit.record("lease_break", detail=verdict.reason)
                    if not obsolete:
                        broken = (view, verdict.reason)
                        candidate = new_lease(site, m.turns_done, m.config.lease_ttl_s)
                        if (yield from retry.call(lambda: try_acquire(t, candidate))):
                            lease = candidate
                if lease is None:
                    continue
        if lease is None:
            yield Progress(
                STAGE_WAIT,
                message=f"Turn {m.turns_done + 1} (round {m.round + 1}) belongs to site {rightful}; {waiting_for}.",
            )
            _sleep(opts.poll_s, token)
            continue

        audit.record("lease", detail=f"turn {lease.turn + 1}")
        outcome = yield from _hold_turn(t, trainer, opts, token, retry, audit, lease, broken, t_lease)
        if outcome is not None:
            return outcome
        # The manifest moved on while we took the lease (a late publisher): wait again.


def _verified_chain(m: Manifest, opts: SiteOptions) -> Verified:
    """The ring's history checked (signatures, pins, head); refused as a whole otherwise."""
    store = TrustStore(opts.trust_dir) if opts.trust_dir else None
    v = verify_chain(m, store, opts.require_signed)
    v.raise_problem()
    return v


def epochs_for_turn(ring_epochs: int, opts: SiteOptions) -> int:
    """The site's own setting when it has one; else the ring's suggestion, never above
    the site's cap (a server cannot make a site train for days on crafted weights)."""
    if opts.epochs_per_turn:
        return opts.epochs_per_turn
    return max(1, min(ring_epochs, opts.max_epochs_per_turn))


def _check_member(m: Manifest, site: str, trainer: TurnTrainer, t: Transport) -> None:
    if site not in m.config.sites:
        raise RingStateError(
            f"Site '{site}' is not a member of the ring at {t.describe()} (members: {', '.join(m.config.sites)})."
        )
    if m.model_id is not None and m.model_id != trainer.model_id:
        raise RingStateError(
            f"The ring at {t.describe()} trains model '{m.model_id}', but this site's trainer is '{trainer.model_id}'."
        )


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


class _HeldTurn:
    """Steps 2-5 of the module docstring for a site that holds the lease, one
    method per step. Any error before the manifest swap releases the lease."""

    def __init__(
        self,
        t: Transport,
        trainer: TurnTrainer,
        opts: SiteOptions,
        token: CancelToken,
        retry: _Retry,
        audit: AuditLog,
        lease: Lease,
    ) -> None:
        self.t, self.trainer, self.opts, self.token = t, trainer, opts, token
        self.retry, self.audit, self.site = retry, audit, opts.site
        self.keeper = _LeaseKeeper(t, lease, lease.ttl_s)

    def record_holder(
        self, broken: tuple[LeaseView, str] | None
    ) -> Generator[Progress, None, tuple[Manifest, str | None] | None]:
        """Step 2: name this site as the holder in the manifest (and the lease it
        broke, if any). None when the ring moved on while the lease was taken."""
        t, site, lease = self.t, self.site, self.keeper.lease
        m = yield from self.retry.call(lambda: read_manifest(t))
        if m.status != "running" or m.turns_done != lease.turn:
            yield from self.retry.call(lambda: release(t, self.keeper.lease))
            return None
        started = utc_now()
        events: tuple = ()
        in_place_of = None
        rightful = m.next_site
        if broken is not None:
            old = broken[0].lease
            in_place_of = rightful if rightful != site else None
            detail = f"Site {site} broke the lease of site {old.site if old else '(unreadable)'} ({broken[1]})" + (
                f" and takes turn {m.turns_done + 1} in place of site {rightful}." if in_place_of else "."
            )
            events = (RingEvent("lease_break", started, site, detail),)
        yield Progress(STAGE_LEASE, message=f"Site {site} holds the ring lease for turn {m.turns_done + 1}.")
        expected = m
        m = m.bumped(holder=Holder(site, lease.token, lease.turn, started), history=m.history + events)
        m = yield from self.retry.call(lambda: commit_manifest(t, expected, m, self.keeper.lease))
        return m, in_place_of

    def download(self, m: Manifest) -> Generator[Progress, None, _Downloaded]:
        """Step 3: the weights, and the optimizer state unless the ring resets it, sha256-checked."""
        t = self.t
        weights = opt_state = None
        size = 0
        if m.weights is not None:
            ref = m.weights
            data = yield from self.retry.transfer(
                lambda: _verified(t, ref, "weights", self.opts.max_weights_bytes), STAGE_DOWNLOAD, ref.size
            )
            weights = decode_weights(data, t.describe(ref.file))
            size += len(data)
            self.audit.record("download", file=ref.file, version=ref.version, sha256=ref.sha256, bytes=len(data))
        if not m.config.reset_optimizer and m.optimizer is not None:
            oref = m.optimizer
            data = yield from self.retry.transfer(
                lambda: _verified(t, oref, "optimizer state", self.opts.max_weights_bytes), STAGE_DOWNLOAD, oref.size
            )
            opt_state = decode_optimizer_state(data, t.describe(oref.file))
            size += len(data)
            self.audit.record("download", file=oref.file, version=oref.version, sha256=oref.sha256, bytes=len(data))
        return _Downloaded(weights, opt_state, size)

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
        t, site = self.t, self.site
        version = m.latest_version + 1
        meta = {
            "ring_id": m.ring_id,
            "version": str(version),
            "site": site,
            "turn": str(m.turns_done),
            "model_id": self.trainer.model_id,
        }
        wdata = encode_weights(result.weights, meta)
        wref = FileRef(
            version, versioned_name(WEIGHTS_DIR, version, site), sha256_hex(wdata), len(wdata), site, m.turns_done
        )
        yield from self.retry.transfer(lambda: t.iter_write_atomic(wref.file, wdata), STAGE_UPLOAD, len(wdata))
        self.audit.record("upload", file=wref.file, version=version, sha256=wref.sha256, bytes=len(wdata))
        oref = None
        size = len(wdata)
        if not m.config.reset_optimizer and self.opts.upload_optimizer and result.optimizer_state is not None:
            odata = encode_optimizer_state(result.optimizer_state, meta)
            oref = FileRef(
                version, versioned_name(OPTIMIZER_DIR, version, site), sha256_hex(odata), len(odata), site, m.turns_done
            )
            yield from self.retry.transfer(lambda: t.iter_write_atomic(oref.file, odata), STAGE_UPLOAD, len(odata))
            self.audit.record("upload", file=oref.file, version=version, sha256=oref.sha256, bytes=len(odata))
            size += len(odata)
        return _Uploaded(wref, oref, size)

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
            record = sign_record(self.opts.signer, m.ring_id, record)
        history = m.history + (record,)
        status = m.status
        if verdict.convergence is not None:
            status = "converged" if verdict.convergence.rule != "max-turns" else "stopped"
            history += (RingEvent(status, record.finished_at, self.site, verdict.convergence.explanation),)
        best = BestWeights(val, up.weights) if verdict.global_improved else m.best
        new = m.bumped(
            turns_done=m.turns_done + 1,
            holder=None,
            weights=up.weights,
            optimizer=up.optimizer,
            best=best,
            patience_counter=verdict.global_counter,
            per_site=verdict.per_site,
            status=status,
            convergence=verdict.convergence,
            history=history,
            model_id=m.model_id or self.trainer.model_id,
        )
        new = yield from self.retry.call(lambda: commit_manifest(self.t, m, new, self.keeper.lease))
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
            deleted = prune(self.t, m)
            if deleted:
                log.info("pruned %d old files from the ring server", len(deleted))
        except ServerError as exc:
            log.warning("could not prune old ring files: %s", exc)
        yield Progress(STAGE_RELEASE)
        yield from self.retry.call(lambda: release(self.t, self.keeper.lease))
        self.audit.record("release", detail=f"turn {record.turn + 1}")


def _hold_turn(
    t: Transport,
    trainer: TurnTrainer,
    opts: SiteOptions,
    token: CancelToken,
    retry: _Retry,
    audit: AuditLog,
    lease: Lease,
    broken: tuple[LeaseView, str] | None,
    t_lease: float,
) -> Generator[Progress, None, TurnOutcome | None]:
    """Steps 2-5 for a site that has just taken the lease; None when the ring
    moved on meanwhile (a late publisher), to wait again."""
    turn = _HeldTurn(t, trainer, opts, token, retry, audit, lease)
    retry.tick = turn.keeper.tick
    try:
        held = yield from turn.record_holder(broken)
        if held is None:
            return None
        m, in_place_of = held
        _verified_chain(m, opts)  # what we train from must be what its site signed
        started = m.holder.since if m.holder else utc_now()
        lease_s = time.monotonic() - t_lease
        t0 = time.monotonic()
        got = yield from turn.download(m)
        download_s, t0 = time.monotonic() - t0, time.monotonic()
        epochs = epochs_for_turn(m.config.epochs_per_turn, opts)
        result = yield from turn.train(m, got, epochs)
        train_s, t0 = time.monotonic() - t0, time.monotonic()
        up = yield from turn.upload(m, result)
        upload_s, t0 = time.monotonic() - t0, time.monotonic()
        record = TurnRecord(
            turn=m.turns_done,
            round=m.round,
            site=opts.site,
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
            started_at=started,
            finished_at=utc_now(),
            train_s=round(train_s, 3),
            overhead_s=round(lease_s + download_s + upload_s, 3),
            in_place_of=in_place_of,
            optimizer_sha256=up.optimizer.sha256 if up.optimizer else "",
            parent_hash=record_hash(m.ring_id, m.turn_records[-1]) if m.turn_records else "",
        )
        m, record = yield from turn.publish(m, record, up)
    except Exception:
        _release_quietly(t, turn.keeper.lease)
        raise
    finally:
        retry.tick = lambda: None
    yield from turn.finish(m, record)
    publish_s = time.monotonic() - t0
    timings = TurnTimings(lease_s, download_s, train_s, upload_s, publish_s, got.bytes, up.bytes)
    return TurnOutcome(True, m, record, timings)


def _verified(t: Transport, ref: FileRef, what: str, max_bytes: int) -> Generator[int, None, bytes]:
    """Chunked download of a file named by the manifest, checked against its sha256."""
    try:
        data = yield from t.iter_read(ref.file, size_cap(ref, max_bytes))
    except FileNotFoundError:
        raise RingStateError(
            f"The {what} file {t.describe(ref.file)} named by the manifest is missing on the server."
        ) from None
    verify_sha256(data, ref.sha256, f"The {what} file {t.describe(ref.file)}")
    return data


def _release_quietly(t: Transport, lease: Lease) -> None:
    try:
        release(t, lease)
    except ServerError as exc:
        log.warning("could not release the ring lease (it will expire): %s", exc)


def run_site(
    t: Transport, trainer: TurnTrainer, opts: SiteOptions, token: CancelToken, wait: bool
) -> Generator[Progress, None, SiteRun]:
    """One turn, or with ``wait`` turns until the ring converges or stops."""
    turns: list[TurnOutcome] = []
    while True:
        outcome = yield from take_turn(t, trainer, opts, token)
        if outcome.trained:
            turns.append(outcome)
        if not wait or outcome.manifest.status != "running":
            return SiteRun(turns, outcome.manifest)
