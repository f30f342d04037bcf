"""The one validator for names that come from the ring server.

Everything the server hands a site (site names, the ring id, the model id,
lease tokens, file names) is untrusted: a member or the server itself may
write ``"../../.ssh"`` into any field. Every such field is checked here, at
parse time, and local paths are only ever built from checked parts and then
checked again to stay inside their folder (:func:`inside`). Text shown to
people passes :func:`printable` (no terminal escapes, no control characters).
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import InputError, printable  # printable re-exported: server text for people

# A site name is stored on the server and becomes part of file names: letters,
# digits, '-' and '_' only, so it can never be a path, markup or an escape.
SITE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")
RING_ID_RE = re.compile(r"^[0-9a-f]{32}$")  # uuid4().hex, set by ``ring init``
MODEL_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
TOKEN_RE = re.compile(r"^[0-9a-f]{8,64}$")  # lease tokens, holder ids, nonces
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
# Ed25519 signatures as lowercase hex, one spelling only: a signature is part of the hash
# that chains turn records, so "AB" and "ab" must not both verify.
SIGNATURE_RE = re.compile(r"^[0-9a-f]{128}$")
# The ring's own file names (the only names prune may delete, the only files a site reads).
VERSIONED_FILE_RE = re.compile(
    r"^(weights|optimizer)/v\d{6,}-[A-Za-z0-9][A-Za-z0-9_-]{0,31}-[0-9a-f]{8,64}"
    r"\.safetensors$"
)
BROKEN_LEASE_RE = re.compile(r"^broken-[0-9TZ]{8,32}-[A-Za-z0-9][A-Za-z0-9_-]{0,31}-[0-9a-f]{4,32}\.json$")
_REL_PART_RE = re.compile(r"^[A-Za-z0-9_.][A-Za-z0-9_.-]{0,200}$")

_KINDS = {
    "site": SITE_RE,
    "ring id": RING_ID_RE,
    "model id": MODEL_ID_RE,
    "token": TOKEN_RE,
    "sha256": SHA256_RE,
    "signature": SIGNATURE_RE,
    "file": VERSIONED_FILE_RE,
}


def check_name(kind: str, value: object, where: str) -> str:
    """``value`` if it is a valid ``kind`` ("site", "ring id", "model id", "token",
    "sha256", "signature", "file"); ValueError naming ``where`` otherwise (parsers turn it
    into their typed error)."""
    pattern = _KINDS[kind]
    if not isinstance(value, str) or not pattern.match(value):
        shown = printable(repr(value))[:60]
        label = "file name" if kind == "file" else kind
        raise ValueError(f"{where}: unexpected {label} {shown}")
    return value


def is_site(value: object) -> bool:
    return isinstance(value, str) and bool(SITE_RE.match(value))


def safe_rel(rel: str) -> str:
    """A ring-folder path made only of plain names (no '..', no absolute path,
    no empty or hidden component): what a transport accepts."""
    if rel == "":
        return rel
    parts = rel.split("/")
    if any(not _REL_PART_RE.match(p) or p in (".", "..") for p in parts):
        raise ValueError(f"refusing the ring path {printable(rel)[:80]!r}")
    return rel


def inside(folder: Path, *parts: str) -> Path:
    """``folder/parts...``, refused unless it stays inside ``folder`` (after
    resolving any '..' and links that exist)."""
    folder = Path(folder)
    target = folder.joinpath(*parts)
    base = folder.resolve()
    got = target.resolve()
    if got != base and base not in got.parents:
        raise InputError(f"Refusing to write {target}: it would leave the folder {folder}.")
    return target
