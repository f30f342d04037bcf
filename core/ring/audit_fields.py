"""Every key and string of the ring's JSON files, classified against the ring's schema
(for ``hemarelay ring audit``, :mod:`core.ring.server_audit`).

A JSON document is walked along the dataclass that reads it (:mod:`core.ring.schema`):
the manifest, a lease, or a lease inside a turn record. Each key must be a field of
that dataclass (or, in a map, a member site or a known metric), and each value what
that field holds: a site name, a hash, a signature, a public key, a time, one of the
ring's keywords, a ring file name, a number, or one of the ring's fixed sentences
(built from a fixed vocabulary, site names and numbers). Anything else is flagged,
and so is any hexadecimal string that reads as text once decoded (a name or a date
hidden as hex). Nothing is left unclassified.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal, Union

from .config import ORDERS, START_FROM
from .names import MODEL_ID_RE, RING_ID_RE, SHA256_RE, SIGNATURE_RE, SITE_RE, TOKEN_RE, VERSIONED_FILE_RE, printable
from .schema import field_types

TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")
PUBKEY_RE = re.compile(r"^ssh-ed25519 [A-Za-z0-9+/]{60,80}={0,2}$")
KNOWN_METRICS = {"val_loss", "train_loss"}  # what the ring's trainers report
KEYWORDS = {
    "format": {"hemarelay-ring/1", "hemarelay-ring/2"},
    "status": {"running", "converged", "stopped"},
    "order": set(ORDERS),
    "convergence": {"global", "per-site"},
    "event": {"turn", "init", "lease_break", "converged", "stopped"},
    "rule": {"global-patience", "per-site-patience", "max-turns"},
    "start_from": set(START_FROM),
}
_KINDS = {
    "ring_id": "ring id",
    "token": "token",
    "holder": "token",
    "site": "site name",
    "in_place_of": "site name",
    "sites": "site name",
    "next_site": "site name",
    "sha256": "hash",
    "weights_sha256": "hash",
    "optimizer_sha256": "hash",
    "parent_hash": "hash",
    "config_sha256": "hash",
    "hash": "hash",
    "signature": "signature",
    "file": "ring file name",
    "weights_file": "ring file name",
    "optimizer_file": "ring file name",
    "model_id": "model id",
    "detail": "ring sentence",
    "explanation": "ring sentence",
    "reason": "ring sentence",
    "since": "time",
    "at": "time",
    **{k: "keyword" for k in KEYWORDS},
}
_CHECKS = {
    "ring id": RING_ID_RE.match,
    "token": TOKEN_RE.match,
    "hash": SHA256_RE.match,
    "signature": SIGNATURE_RE.match,
    "ring file name": VERSIONED_FILE_RE.match,
    "model id": MODEL_ID_RE.match,
    "time": TIME_RE.match,
    "public key": PUBKEY_RE.match,
}
# Every word of the ring's own sentences (core.ring: init, lease breaks, convergence).
VOCABULARY = set(
    """
a after ago already an and are as best broke broken but by by-site clock convergence counted created
did each ended every expired fixed for from global had has in its it is last lease left limit loss lowering
machine max-turns min more not of on order over own paper paper's patience per-site place process
published reached renewed ring row rule s shuffle site site's sites split stopped takes than the
this turn turns unchanged unreadable validation was which with without written held its own comes
before by more rule's
""".split()
)


@dataclass(frozen=True)
class FieldInfo:
    path: str  # "history[*].site"
    kind: str  # "site name", "hash", "signature", "public key", "scalar", "time", "keyword", ...
    count: int = 1
    flagged: bool = False
    value: str = ""  # shown for flagged fields (printable, truncated)


def hex_text(value: str) -> str:
    """The text a hexadecimal string spells, when it reads as text ("" otherwise): a
    random hash or signature decodes to bytes that are almost never mostly printable."""
    if len(value) < 20 or len(value) % 2 or not re.fullmatch(r"[0-9a-fA-F]+", value):
        return ""
    raw = bytes.fromhex(value)
    printable_bytes = sum(32 <= b < 127 for b in raw)
    letters = sum(chr(b).isalpha() for b in raw)
    return raw.decode("ascii", "replace") if printable_bytes >= 0.9 * len(raw) and letters >= 3 else ""


def sentence_ok(text: str, sites: set[str]) -> bool:
    if len(text) > 500:
        return False
    for word in re.findall(r"[^\s,.;:()→'\"]+", text):
        w = word.lower()
        if (
            w in VOCABULARY
            or word in sites
            or re.fullmatch(r"[-+]?[\d.e+-]+", w)
            or w.endswith("'s")
            and word[:-2] in sites
            or TIME_RE.match(word)
            or re.fullmatch(r"\d+(\.\d+)?s?", w)
        ):
            continue
        return False
    return True


class FieldWalk:
    """Classifies the values of JSON documents; ``fields`` collects what was found,
    counting the unflagged kinds and listing every flagged value."""

    def __init__(self, sites: set[str]) -> None:
        self.sites = sites
        self._seen: dict[tuple[str, str, bool], list[str]] = {}
        self.keys = self.strings = 0

    def fields(self) -> list[FieldInfo]:
        out = []
        for (path, kind, flagged), values in self._seen.items():
            if flagged:
                out += [FieldInfo(path, kind, 1, True, v) for v in values]
            else:
                out.append(FieldInfo(path, kind, len(values)))
        return out

    def note(self, path: str, kind: str, flagged: bool, value: Any = "") -> None:
        self._seen.setdefault((path, kind, flagged), []).append(printable(str(value))[:120])

    def walk(self, value: Any, tp: Any, path: str, name: str = "", depth: int = 0) -> None:
        """``value`` read as type ``tp`` (a schema annotation), found under field ``name``."""
        if depth > 32:
            self.note(path, "nested too deeply", True, "...")
            return
        origin, args = typing.get_origin(tp), typing.get_args(tp)
        if origin in (Union, types.UnionType):
            if value is None and type(None) in args:
                self.note(path, "empty", False)
                return
            options = [a for a in args if a is not type(None)]
            if len(options) > 1:  # a tagged union of dataclasses
                tp = next((o for o in options if isinstance(value, dict) and o.claims(value)), options[-1])
            else:
                tp = options[0]
            origin, args = typing.get_origin(tp), typing.get_args(tp)
        if dataclasses.is_dataclass(tp):
            self.walk_object(value, tp, path, depth)
        elif origin in (tuple, list):
            if not isinstance(value, list):
                self.note(path, "not a list", True, value)
                return
            for item in value:
                self.walk(item, args[0] if args else Any, f"{path}[*]", name, depth + 1)
        elif origin is dict:
            self.walk_map(value, args[1], path, name, depth)
        else:
            self.leaf(value, tp, path, name)

    def walk_object(self, value: Any, cls: type, path: str, depth: int, extra: dict[str, Any] | None = None) -> None:
        if not isinstance(value, dict):
            self.note(path or cls.__name__, f"not a {cls.__name__} object", True, value)
            return
        types_ = {**field_types(cls), **(extra or {})}
        types_.pop("NAMES", None)
        for key, v in value.items():
            self.keys += 1
            at = f"{path}.{key}" if path else str(key)
            if not isinstance(key, str) or key not in types_ or key == "NAMES":
                self.note(f"{path}.<key>" if path else "<key>", "key the ring does not write", True, key)
                continue
            self.walk(v, types_[key], at, key, depth + 1)

    def walk_map(self, value: Any, item_tp: Any, path: str, name: str, depth: int) -> None:
        if not isinstance(value, dict):
            self.note(path, "not an object", True, value)
            return
        for key, v in value.items():
            self.keys += 1
            if name == "metrics":
                ok, shown = key in KNOWN_METRICS, "metrics.<metric>"
                kind = "metric name" if ok else "metric name the ring's trainers do not report"
            else:  # per_site, signers: keyed by member sites
                ok, shown, kind = (
                    key in self.sites,
                    f"{path}.<site>",
                    "site name" if key in self.sites else "key the ring does not write",
                )
            if not ok:
                self.note(f"{path}.<key>", kind, True, key)
                continue
            self.note(f"{path}.<key>", kind, False, key)
            self.walk(
                v,
                item_tp if name != "signers" else "public key",
                shown if name != "metrics" else f"{path}.{key}",
                name if name != "metrics" else key,
                depth + 1,
            )

    def leaf(self, value: Any, tp: Any, path: str, name: str) -> None:
        if value is None:
            self.note(path, "empty", False)
        elif isinstance(value, bool) or isinstance(value, (int, float)):
            expected = tp in (int, float, bool, Any) or typing.get_origin(tp) is Literal
            finite = isinstance(value, bool) or math.isfinite(value)
            self.note(path, "scalar", not (expected and finite), value)
        elif isinstance(value, str):
            self.string(value, tp, path, name)
        else:
            self.note(path, "unexpected value", True, value)

    def string(self, value: str, tp: Any, path: str, name: str) -> None:
        self.strings += 1
        hidden = hex_text(value)
        if hidden:
            self.note(path, f"hex that reads as text ({printable(hidden)[:40]!r})", True, value)
            return
        if value == "":
            self.note(path, "empty", False)
            return
        kind = "public key" if tp == "public key" else _KINDS.get(name)
        if kind is None and (name.endswith("_at") or name in ("acquired_at", "renewed_at", "expires_at")):
            kind = "time"
        ok = False
        if kind == "site name":
            ok = bool(SITE_RE.match(value)) and (value in self.sites or not self.sites)
        elif kind == "keyword":
            ok = value in KEYWORDS[name]
        elif kind == "ring sentence":
            ok = sentence_ok(value, self.sites)
        elif kind in _CHECKS:
            ok = bool(_CHECKS[kind](value))
        self.note(path, kind if ok else "text", not ok, value)
