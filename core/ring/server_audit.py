"""``hemarelay ring audit``: everything a ring server holds, for a site's privacy officer.

Walks the ring folder without following links and lists every file, and in
every file every field, each classified as one of what a ring may hold:
weights (tensors), hashes, signatures and public keys, scalars (numbers,
flags, times, the ring's own keywords), site names and the ring's own file
names, or the ring's fixed sentences about its own events (built only from a
fixed vocabulary, site names and numbers). Anything else is **flagged**: a
file or folder the ring does not write, a link, a string that is none of the
above (e.g. a patient name, a case id, a path), a tensor name that is not a
parameter name, extra metadata in a weights file.

Unlike the tests' scanner (tests/privacy_scan.py: it looks for one site's own case names),
this needs nothing from the site: the allow-list is the ring's schema.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from .codec import OPTIMIZER_JSON_KEY, read_header
from .errors import ServerError
from .manifest import BROKEN_LEASES_DIR, LEASE, MANIFEST, OPTIMIZER_DIR, WEIGHTS_DIR
from .names import BROKEN_LEASE_RE, MODEL_ID_RE, RING_ID_RE, SHA256_RE, SITE_RE, VERSIONED_FILE_RE, printable
from .transport import Transport

MAX_AUDIT_BYTES = 4 << 30
_TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")
_SIGNATURE_RE = re.compile(r"^[0-9a-f]{128}$")
_PUBKEY_RE = re.compile(r"^ssh-ed25519 [A-Za-z0-9+/]{60,80}={0,2}$")
_KEYWORD_RE = re.compile(r"^[a-z][a-z0-9_.-]{0,31}(/\d+)?$")  # "running", "per-site", "hemarelay-ring/1"
_TENSOR_NAME_RE = re.compile(r"^[A-Za-z0-9_]{1,64}(\.[A-Za-z0-9_]{1,64}){0,12}$")
_DTYPES = {"F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "BOOL"}
# Every word of the ring's own sentences (core.ring: init, lease breaks, convergence).
_VOCABULARY = set(
    """
a after ago already an and are as best broke broken but by by-site clock convergence counted created
did each ended every expired fixed for from global had has in its it is last lease left limit loss lowering
machine max-turns min more not of on order over own paper paper's patience per-site place process
published reached renewed ring row rule s shuffle site site's sites split stopped takes than the
this turn turns unchanged unreadable validation was which with without written held its own comes
before by more rule's
""".split()
)
_FILE_KINDS = [
    (re.compile(rf"^{re.escape(MANIFEST)}$"), "manifest"),
    (re.compile(rf"^{re.escape(LEASE)}$"), "lease"),
    (re.compile(rf"^{BROKEN_LEASES_DIR}/{BROKEN_LEASE_RE.pattern[1:-1]}$"), "lease"),
    (VERSIONED_FILE_RE, "tensors"),
]
_FOLDERS = {"", WEIGHTS_DIR, OPTIMIZER_DIR, BROKEN_LEASES_DIR}


@dataclass(frozen=True)
class FieldInfo:
    path: str  # "history[*].site"
    kind: str  # "site name", "hash", "signature", "public key", "scalar", "time", "keyword", "file name", ...
    count: int = 1
    flagged: bool = False
    value: str = ""  # shown for flagged fields (printable, truncated)


@dataclass
class FileAudit:
    file: str
    kind: str  # "manifest", "lease", "tensors", "folder", "unknown", "link"
    size: int
    fields: list[FieldInfo] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # flagged at file level

    @property
    def flagged(self) -> list[str]:
        out = list(self.problems)
        out += [f"{f.path} = {f.value!r} ({f.kind})" for f in self.fields if f.flagged]
        return out


@dataclass
class AuditReport:
    where: str
    files: list[FileAudit] = field(default_factory=list)

    @property
    def flagged(self) -> list[tuple[str, str]]:
        return [(f.file, p) for f in self.files for p in f.flagged]

    def to_json(self) -> dict:
        return {
            "server": self.where,
            "flagged": [{"file": f, "problem": p} for f, p in self.flagged],
            "files": [asdict(f) for f in self.files],
        }

    def describe(self) -> str:
        lines = [f"Ring server {self.where}: {len(self.files)} entries audited."]
        for f in self.files:
            lines.append(f"{f.file}  [{f.kind}, {f.size} bytes]")
            for x in f.fields:
                mark = "FLAG " if x.flagged else "     "
                extra = f" = {x.value!r}" if x.flagged else ""
                lines.append(f"  {mark}{x.path}: {x.kind}" + (f" x{x.count}" if x.count > 1 else "") + extra)
            for p in f.problems:
                lines.append(f"  FLAG {p}")
        flagged = self.flagged
        lines.append(
            f"{len(flagged)} item(s) flagged"
            + (":" if flagged else ": the server holds only weights, hashes, signatures, scalars and site names.")
        )
        lines += [f"  {f}: {p}" for f, p in flagged]
        return "\n".join(lines)


# -- classification -------------------------------------------------------------


def _sentence_ok(text: str, sites: set[str]) -> bool:
    if len(text) > 500:
        return False
    for word in re.findall(r"[^\s,.;:()→'\"]+", text):
        w = word.lower()
        if (
            w in _VOCABULARY
            or word in sites
            or re.fullmatch(r"[-+]?[\d.e+-]+", w)
            or w.endswith("'s")
            and word[:-2] in sites
            or _TIME_RE.match(word)
            or re.fullmatch(r"\d+(\.\d+)?s?", w)
        ):
            continue
        return False
    return True


def classify(key: str, value: Any, sites: set[str]) -> tuple[str, bool]:
    """(kind, flagged) of one leaf value; ``key`` is its field name."""
    if value is None:
        return "empty", False
    if isinstance(value, bool):
        return "scalar", False
    if isinstance(value, (int, float)):
        return "scalar", False
    if not isinstance(value, str):
        return "unexpected value", True
    if value == "":
        return "empty", False
    if key in ("site", "in_place_of", "sites") and SITE_RE.match(value):
        return "site name", False
    if SHA256_RE.match(value) or RING_ID_RE.match(value) or re.fullmatch(r"[0-9a-f]{8,64}", value):
        return "hash or id", False
    if _SIGNATURE_RE.match(value):
        return "signature", False
    if _PUBKEY_RE.match(value):
        return "public key", False
    if _TIME_RE.match(value):
        return "time", False
    if VERSIONED_FILE_RE.match(value):
        return "ring file name", False
    if key == "model_id" and MODEL_ID_RE.match(value):
        return "model id", False
    if _KEYWORD_RE.match(value) and key in ("format", "status", "order", "convergence", "event", "rule", "start_from"):
        return "keyword", False
    if key in ("detail", "explanation") and _sentence_ok(value, sites):
        return "ring sentence", False
    if value in sites:
        return "site name", False
    return "text", True


def _walk(
    value: Any, path: str, key: str, sites: set[str], out: dict[tuple[str, str, bool], list[str]], depth: int = 0
) -> None:
    if depth > 32:
        out.setdefault((path, "nested too deeply", True), []).append("...")
        return
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str) or not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", k):
                out.setdefault((f"{path}.<key>", "text", True), []).append(str(k))
                continue
            # Keys that are site names (per_site, signers) are collapsed into <site>.
            name = "<site>" if k in sites and path.endswith(("per_site", "signers")) else k
            _walk(v, f"{path}.{name}" if path else name, k, sites, out, depth + 1)
    elif isinstance(value, list):
        for v in value:
            _walk(v, f"{path}[*]", key, sites, out, depth + 1)
    else:
        kind, flagged = classify(key, value, sites)
        out.setdefault((path, kind, flagged), []).append(printable(value)[:120])


def _fields(doc: Any, sites: set[str]) -> list[FieldInfo]:
    acc: dict[tuple[str, str, bool], list[str]] = {}
    _walk(doc, "", "", sites, acc)
    out = []
    for (path, kind, flagged), values in acc.items():
        if flagged:
            out += [FieldInfo(path, kind, 1, True, v) for v in values]
        else:
            out.append(FieldInfo(path, kind, len(values)))
    return out


def _audit_json(fa: FileAudit, data: bytes, sites: set[str]) -> None:
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError):
        fa.problems.append("not valid JSON")
        return
    fa.fields = _fields(doc, sites)


def _audit_tensors(fa: FileAudit, data: bytes, sites: set[str]) -> None:
    try:
        header = read_header(data)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        fa.problems.append(f"not a safetensors file ({exc})")
        return
    meta = dict(header.pop("__metadata__", None) or {})
    embedded = meta.pop(OPTIMIZER_JSON_KEY, None)
    allowed_meta = {"format", "ring_id", "version", "site", "turn", "model_id"}
    for k, v in meta.items():
        if k not in allowed_meta:
            fa.fields.append(FieldInfo(f"metadata.{printable(k)[:64]}", "extra metadata", 1, True, printable(v)[:120]))
        else:
            kind, flagged = classify(k, v, sites)
            if k in ("version", "turn") and isinstance(v, str) and v.isdigit():
                kind, flagged = "scalar", False
            if k == "format" and v in ("hemarelay-weights/1", "hemarelay-optimizer/1"):
                kind, flagged = "keyword", False
            fa.fields.append(FieldInfo(f"metadata.{k}", kind, 1, flagged, printable(v)[:120] if flagged else ""))
    if embedded is not None:
        try:
            fa.fields += [
                FieldInfo(f"metadata.optimizer.{f.path}", f.kind, f.count, f.flagged, f.value)
                for f in _fields(json.loads(embedded), sites)
            ]
        except (ValueError, RecursionError):
            fa.problems.append("optimizer metadata is not valid JSON")
    params = 0
    for name, info in header.items():
        shape = info.get("shape", []) if isinstance(info, dict) else []
        dtype = info.get("dtype") if isinstance(info, dict) else None
        if not _TENSOR_NAME_RE.match(str(name)) or dtype not in _DTYPES:
            fa.fields.append(FieldInfo("tensor", "tensor name or type", 1, True, printable(f"{name} {dtype}")[:120]))
            continue
        n = 1
        for s in shape:
            n *= int(s)
        params += n
    fa.fields.append(FieldInfo("tensors", f"weights: {len(header)} tensors, {params:,} numbers", 1))


def audit_server(t: Transport) -> AuditReport:
    """Every entry of the ring folder, classified (see the module docstring)."""
    report = AuditReport(t.describe())
    sites: set[str] = set()
    try:  # the members' names: every other string must justify itself
        doc = json.loads(t.read_bytes(MANIFEST, 64 << 20))
        sites = {s for s in doc.get("config", {}).get("sites", []) if isinstance(s, str) and SITE_RE.match(s)}
    except (FileNotFoundError, ValueError, AttributeError, ServerError, RecursionError):
        pass
    todo = [""]
    while todo:
        folder = todo.pop(0)
        for e in t.list_entries(folder):
            rel = f"{folder}/{e.name}" if folder else e.name
            shown = printable(rel)
            if e.kind == "dir":
                fa = FileAudit(shown + "/", "folder", 0)
                if rel not in _FOLDERS:
                    fa.problems.append("a folder the ring does not make")
                report.files.append(fa)
                if rel.count("/") < 3 and re.fullmatch(r"[A-Za-z0-9_.-]{1,100}(/[A-Za-z0-9_.-]{1,100})*", rel):
                    todo.append(rel)
                continue
            if e.kind != "file":
                report.files.append(
                    FileAudit(shown, e.kind, e.size, problems=[f"a {e.kind}, not a plain file (never followed)"])
                )
                continue
            kind = next((k for pat, k in _FILE_KINDS if pat.match(rel)), None)
            fa = FileAudit(shown, kind or "unknown", e.size)
            report.files.append(fa)
            if kind is None:
                temp = re.match(r"^(.*)\.tmp-[A-Za-z0-9_-]{1,80}$", rel)
                if temp and any(p.match(temp.group(1)) for p, _ in _FILE_KINDS):
                    fa.kind = "temp file"  # an upload in progress (or abandoned): its name is the ring's
                    continue
                fa.problems.append("not a file the ring writes")
                continue
            try:
                data = t.read_bytes(rel, MAX_AUDIT_BYTES)
            except (FileNotFoundError, ServerError) as exc:
                fa.problems.append(f"could not be read: {exc}")
                continue
            if kind == "tensors":
                _audit_tensors(fa, data, sites)
            else:
                _audit_json(fa, data, sites)
    return report
