"""Operations on the ring folder's layout: create, read and swap the manifest,
name and fetch versioned files, prune old ones. The layout itself is described
in :mod:`core.ring.manifest`."""

from __future__ import annotations

import logging
import re
import uuid
from typing import TYPE_CHECKING, Generator

from ..progress import drive
from .codec import verify_sha256
from .errors import LeaseLostError, ManifestConflictError, RingStateError, ServerError
from .lease import Lease, read_lease
from .manifest import (
    BROKEN_LEASES_DIR,
    LEASE,
    MANIFEST,
    OPTIMIZER_DIR,
    WEIGHTS_DIR,
    FileRef,
    Manifest,
    RingConfig,
    TurnRecord,
    new_manifest,
    parse_manifest,
    read_manifest,
)
from .names import BROKEN_LEASE_RE, VERSIONED_FILE_RE
from .transport import TEMP_MARK, Transport

if TYPE_CHECKING:
    from .records import BestWeights
    from .trust import Pin, TrustStore

log = logging.getLogger(__name__)
KEEP_BROKEN_LEASES = 20
# What a site accepts to read as weights (the manifest: MAX_MANIFEST_BYTES in
# manifest.py); also capped by their recorded size and the site's own maximum.
MAX_WEIGHTS_BYTES = 2 << 30


def init_ring(t: Transport, config: RingConfig) -> Manifest:
    """Create the ring folder and its first manifest; refuse if a ring is there."""
    m = new_manifest(config)
    t.makedirs("")
    t.makedirs(WEIGHTS_DIR)
    t.makedirs(OPTIMIZER_DIR)
    if not t.create_exclusive(MANIFEST, m.to_bytes()):
        existing = read_manifest(t)
        raise RingStateError(
            f"A ring already exists at {t.describe()} (sites {', '.join(existing.config.sites)}, "
            f"{existing.turns_done} turns, {existing.status}); choose another folder."
        )
    return m


def commit_manifest(t: Transport, expected: Manifest, new: Manifest, lease: Lease) -> Manifest:
    """Replace the manifest with ``new`` if it is still ``expected`` and we still hold
    ``lease`` (compare-and-swap under the lock). Safe to retry: finding ``new``
    already in place counts as done."""
    assert new.revision == expected.revision + 1
    data = new.to_bytes()
    parse_manifest(data, "the manifest to publish")  # the upload passes the same checks as any read
    current = read_manifest(t)
    if current.revision == new.revision and t.read_bytes(MANIFEST) == data:
        return new  # an earlier attempt landed; its answer was lost with the connection
    tmp = f"{MANIFEST}{TEMP_MARK}{lease.site}-{uuid.uuid4().hex[:8]}"
    t.write_atomic(tmp, data)
    try:
        current = read_manifest(t)
        if current.revision != expected.revision or current.ring_id != expected.ring_id:
            raise ManifestConflictError(
                f"The ring manifest changed while site {lease.site} held the lease (revision "
                f"{expected.revision} became {current.revision}); this turn is not published."
            )
        view = read_lease(t)
        if view is None or view.lease is None or view.lease.token != lease.token:
            raise LeaseLostError(f"Site {lease.site} lost its lease before publishing; this turn is not published.")
        t.rename(tmp, MANIFEST)
    except BaseException:
        try:
            t.delete(tmp)
        except ServerError:
            pass
        raise
    return new


def versioned_name(folder: str, version: int, site: str) -> str:
    return f"{folder}/v{version:06d}-{site}-{uuid.uuid4().hex[:8]}.safetensors"


def size_cap(ref: FileRef, max_bytes: int = MAX_WEIGHTS_BYTES) -> int:
    """At most the recorded size (when the manifest records one) and the site's maximum."""
    return min(ref.size, max_bytes) if ref.size > 0 else max_bytes


def iter_download_verified(
    t: Transport, ref: FileRef, what: str, max_bytes: int = MAX_WEIGHTS_BYTES
) -> Generator[int, None, bytes]:
    """A file named by the manifest, read in chunks (yielding bytes read) and checked
    against its sha256."""
    try:
        data = yield from t.iter_read(ref.file, size_cap(ref, max_bytes))
    except FileNotFoundError:
        raise RingStateError(
            f"The {what} file {t.describe(ref.file)} named by the manifest is missing on the server."
        ) from None
    verify_sha256(data, ref.sha256, f"The {what} file {t.describe(ref.file)}")
    return data


def download_verified(t: Transport, ref: FileRef, what: str, max_bytes: int = MAX_WEIGHTS_BYTES) -> bytes:
    """:func:`iter_download_verified` in one call."""
    return drive(iter_download_verified(t, ref, what, max_bytes))


_VERSION_RE = re.compile(r"^v(\d+)-")
_TEMP_RE = re.compile(rf".+{re.escape(TEMP_MARK)}[A-Za-z0-9_-]{{1,64}}$")
_ROOT_TEMP_RE = re.compile(
    rf"^(?:{re.escape(MANIFEST)}|{re.escape(LEASE)}){re.escape(TEMP_MARK)}"
    r"[A-Za-z0-9_-]{1,80}$"
)


def prune(t: Transport, m: Manifest) -> list[str]:
    """Delete what the manifest no longer needs: weights older than the last
    ``keep_versions`` turns (the best and current stay), old optimizer states,
    leftover temp files, old broken leases. Call only while holding the lease."""
    # Only names of the ring's own patterns are ever deleted, and the transport refuses
    # linked folders: a member planting ``leases -> elsewhere`` cannot make us delete there.
    keep = {ref.file for ref in kept_refs(m)} | ({m.optimizer.file} if m.optimizer else set())
    deleted = []
    for folder in (WEIGHTS_DIR, OPTIMIZER_DIR):
        for f in t.list_dir(folder):
            rel = f"{folder}/{f.name}"
            temp = _TEMP_RE.match(f.name) and VERSIONED_FILE_RE.match(rel.split(TEMP_MARK)[0])
            if rel not in keep and (VERSIONED_FILE_RE.match(rel) or temp):
                t.delete(rel)
                deleted.append(rel)
    for f in t.list_dir(""):
        if _ROOT_TEMP_RE.match(f.name):
            t.delete(f.name)
            deleted.append(f.name)
    broken = sorted(f.name for f in t.list_dir(BROKEN_LEASES_DIR) if BROKEN_LEASE_RE.match(f.name))
    for name in broken[:-KEEP_BROKEN_LEASES]:
        t.delete(f"{BROKEN_LEASES_DIR}/{name}")
        deleted.append(f"{BROKEN_LEASES_DIR}/{name}")
    return deleted


def fetch_weights(
    t: Transport,
    which: str = "best",
    store: "TrustStore | None" = None,
    require_signed: bool = False,
    pin: "Pin | None" = None,
) -> tuple[bytes, FileRef, Manifest]:
    """Verified bytes of the ``best`` or ``latest`` weights, or of version N if still kept.
    On a signed ring they must be what the site whose turn produced them signed, checked
    against a pin: this site's (``store``, whose head it advances) or one given (``pin``,
    e.g. from a signers file); without either a signed ring is refused ("unpinned").
    The version is chosen among the verified records (the best by their signed losses)."""
    from .signing import verify_and_record, verify_chain

    m = read_manifest(t)
    if store is not None:
        verified = verify_and_record(m, store, require_signed)
    else:
        verified = verify_chain(m, pin, require_signed)
    verified.raise_problem()
    ref = _chosen(m, verified.records, verified.tally.best if verified.tally else m.best, which)
    if ref is None:
        raise RingStateError(f"The ring at {t.describe()} has no weights yet (no turn finished).")
    return download_verified(t, ref, "weights"), ref, m


def _chosen(m: Manifest, records: tuple[TurnRecord, ...], best: "BestWeights | None", which: str) -> FileRef | None:
    if which == "best":
        return best.weights if best else None
    if which == "latest":
        return records[-1].weights_ref() if records else None
    try:
        version = int(which)
    except ValueError:
        raise RingStateError(f"Weights version '{which}': use best, latest or a number.") from None
    ref = next((r for r in kept_refs(m) if r.version == version), None)
    if ref is None:
        raise RingStateError(f"Weights version {version} is not kept on the server.")
    return ref


def kept_refs(m: Manifest) -> list[FileRef]:
    """The weights :func:`prune` keeps on the server, newest first, each file once: the
    latest, the best, and those of the last ``keep_versions`` turns, as their turn
    records name them (with their signed size; 0 in a ring made before sizes were signed)."""
    records = m.turn_records
    by_version = {r.version: r for r in records}
    best = by_version.get(m.best.weights.version) if m.best else None
    keep = records[-1:] + ([best] if best else []) + records[::-1][: m.config.keep_versions]
    out: dict[str, FileRef] = {}
    for r in keep:
        out.setdefault(r.weights_file, r.weights_ref())
    return list(out.values())
