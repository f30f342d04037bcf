"""``hemarelay ring audit``: everything a ring server holds, for a site's privacy officer.

Walks the ring folder without following links and lists every file, temporary
ones included, and reads every one: in every JSON file every key and string is
classified against the ring's schema (:mod:`core.ring.audit_fields`); in every
weights or optimizer file its metadata, and every tensor's name, type and shape
against the network the ring trains (given by the caller, e.g.
:func:`core.turn_trainers.network_shapes`), and that no bytes follow its tensors.
Weights and optimizer files the manifest does not name are flagged (they could
carry anything), and so are files whose sha256 differs from their turn record's,
a turn history whose signatures do not verify against the keys it lists, files
and folders the ring does not write, links, and anything that could not be
checked: the closing sentence says what was checked, and "0 item(s) flagged"
only when every one of those checks ran and passed.

Unlike the tests' scanner (tests/privacy_scan.py: it looks for one site's own case
names), this needs nothing from the site: the allow-list is the ring's schema.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Callable

from .audit_fields import FieldInfo, FieldWalk
from .codec import OPTIMIZER_JSON_KEY, read_header, sha256_hex
from .errors import RingStateError, ServerError
from .manifest import BROKEN_LEASES_DIR, LEASE, MANIFEST, OPTIMIZER_DIR, WEIGHTS_DIR, Manifest, parse_manifest
from .names import BROKEN_LEASE_RE, SITE_RE, VERSIONED_FILE_RE, printable
from .records import Lease
from .trainer import NetworkShapes
from .transport import TEMP_MARK, Transport

MAX_AUDIT_BYTES = 4 << 30
_FILE_KINDS = [
    (re.compile(rf"^{re.escape(MANIFEST)}$"), "manifest"),
    (re.compile(rf"^{re.escape(LEASE)}$"), "lease"),
    (re.compile(rf"^{BROKEN_LEASES_DIR}/{BROKEN_LEASE_RE.pattern[1:-1]}$"), "lease"),
    (VERSIONED_FILE_RE, "tensors"),
]
# Temp files: "<target>.tmp-<nonce>", the nonce a hex string, or "<site>-<hex>" (manifest swaps).
_TEMP_RE = re.compile(
    rf"^(.*){re.escape(TEMP_MARK)}(?:[0-9a-f]{{8,32}}|[A-Za-z0-9][A-Za-z0-9_-]{{0,31}}-[0-9a-f]{{8}})$"
)
_FOLDERS = {"", WEIGHTS_DIR, OPTIMIZER_DIR, BROKEN_LEASES_DIR}
_FLOAT_DTYPES = {"F64", "F32", "F16", "BF16"}
_OPTIMIZER_STATE = re.compile(r"^state\.(\d{1,6})\.(exp_avg|exp_avg_sq|max_exp_avg_sq|step)$")
_WEIGHTS_META = {"format", "ring_id", "version", "site", "turn", "model_id"}
_GROUP_KEYS = {
    "lr",
    "betas",
    "eps",
    "weight_decay",
    "amsgrad",
    "maximize",
    "foreach",
    "capturable",
    "differentiable",
    "fused",
    "params",
    "decoupled_weight_decay",
    "initial_lr",
}
_DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}


@dataclass
class FileAudit:
    file: str
    kind: str  # "manifest", "lease", "tensors", "temp file", "folder", "unknown", "link"
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
    problems: list[str] = field(default_factory=list)  # flagged about the ring as a whole
    checked: list[str] = field(default_factory=list)  # what was checked, in words

    @property
    def flagged(self) -> list[tuple[str, str]]:
        return [(".", p) for p in self.problems] + [(f.file, p) for f in self.files for p in f.flagged]

    def to_json(self) -> dict:
        return {
            "server": self.where,
            "checked": self.checked,
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
        lines += [f"FLAG {p}" for p in self.problems]
        lines.append("Checked: " + "; ".join(self.checked) + ".")
        flagged = self.flagged
        if flagged:
            lines.append(f"{len(flagged)} item(s) flagged:")
            lines += [f"  {f}: {p}" for f, p in flagged]
        else:
            lines.append(
                "0 item(s) flagged: the server holds only weights and optimizer moments of the network's "
                "names and shapes, hashes, signatures and public keys, scalars, times, the ring's keywords "
                "and sentences, and site names."
            )
        return "\n".join(lines)


class _Audit:
    def __init__(self, t: Transport, network: Callable[[str], NetworkShapes | None]) -> None:
        self.t, self.network = t, network
        self.report = AuditReport(t.describe())
        self.manifest: Manifest | None = None
        self.sites: set[str] = set()
        self.net: NetworkShapes | None = None
        self.walk = FieldWalk(set())
        self.n_read = self.n_temp = self.n_tensors = self.n_tensor_files = 0
        self.hashes_checked = 0
        self.tensor_files: list[str] = []

    # -- the manifest first: who the members are, what the ring names ----------------
    def read_manifest(self) -> None:
        try:
            data = self.t.read_bytes(MANIFEST, 64 << 20)
        except (FileNotFoundError, ServerError) as exc:
            self.report.problems.append(f"the manifest could not be read ({exc}): nothing names the ring's files")
            return
        try:
            self.manifest = parse_manifest(data, MANIFEST)
        except RingStateError as exc:
            self.report.problems.append(f"{exc} (its fields are still classified below)")
        try:
            doc = json.loads(data)
            sites = doc.get("config", {}).get("sites", [])
            self.sites = {s for s in sites if isinstance(s, str) and SITE_RE.match(s)}
        except (ValueError, AttributeError, RecursionError, UnicodeDecodeError):
            pass
        self.walk = FieldWalk(self.sites)
        if self.manifest is not None and self.manifest.model_id:
            self.net = self.network(self.manifest.model_id)

    def named(self) -> dict[str, str]:
        """Every weights or optimizer file the manifest names, with the sha256 it names."""
        m = self.manifest
        if m is None:
            return {}
        out = {}
        for r in m.turn_records:
            out[r.weights_file] = r.weights_sha256
            if r.optimizer_file:
                out[r.optimizer_file] = r.optimizer_sha256
        for ref in (m.weights, m.optimizer, m.best.weights if m.best else None):
            if ref is not None:
                out.setdefault(ref.file, ref.sha256)
        return out

    # -- every entry --------------------------------------------------------------------
    def run(self) -> AuditReport:
        self.read_manifest()
        named = self.named()
        todo = [""]
        while todo:
            folder = todo.pop(0)
            for e in self.t.list_entries(folder):
                rel = f"{folder}/{e.name}" if folder else e.name
                if e.kind == "dir":
                    fa = FileAudit(printable(rel) + "/", "folder", 0)
                    if rel not in _FOLDERS:
                        fa.problems.append("a folder the ring does not make")
                    self.report.files.append(fa)
                    if rel.count("/") < 3 and re.fullmatch(r"[A-Za-z0-9_.-]{1,100}(/[A-Za-z0-9_.-]{1,100})*", rel):
                        todo.append(rel)
                elif e.kind != "file":
                    self.report.files.append(
                        FileAudit(
                            printable(rel), e.kind, e.size, problems=[f"a {e.kind}, not a plain file (never followed)"]
                        )
                    )
                else:
                    self.report.files.append(self.audit_file(rel, e.size, named))
        self.whole_ring(named)
        return self.report

    def audit_file(self, rel: str, size: int, named: dict[str, str]) -> FileAudit:
        kind = next((k for pat, k in _FILE_KINDS if pat.match(rel)), None)
        temp = _TEMP_RE.match(rel)
        target_kind = next((k for pat, k in _FILE_KINDS if temp and pat.match(temp.group(1))), None)
        fa = FileAudit(printable(rel), kind or ("temp file" if target_kind else "unknown"), size)
        if kind is None and target_kind is None:
            fa.problems.append("not a file the ring writes (its name is none of the ring's)")
        try:
            data = self.t.read_bytes(rel, MAX_AUDIT_BYTES)
        except (FileNotFoundError, ServerError) as exc:
            fa.problems.append(f"could not be read: {exc}")
            return fa
        self.n_read += 1
        self.n_temp += kind is None and target_kind is not None
        what = kind or target_kind
        if what == "tensors":
            self.audit_tensors(fa, rel, data)
            if kind is not None:
                self.check_named(fa, rel, data, named)
        elif what in ("manifest", "lease"):
            self.audit_json(fa, data, what)
        else:  # an unknown file: still read, and said what it looks like
            fa.problems.append(f"its content ({len(data)} bytes) was read but has no place on a ring server")
        return fa

    def audit_json(self, fa: FileAudit, data: bytes, what: str) -> None:
        try:
            doc = json.loads(data)
        except (ValueError, UnicodeDecodeError, RecursionError):
            fa.problems.append("not valid JSON")
            return
        walk = FieldWalk(self.sites)
        if what == "manifest":
            walk.walk_object(doc, Manifest, "", 0, extra={"round": int, "next_site": str})
        else:
            walk.walk_object(doc, Lease, "", 0)
        fa.fields = walk.fields()
        self.walk.keys += walk.keys
        self.walk.strings += walk.strings

    def check_named(self, fa: FileAudit, rel: str, data: bytes, named: dict[str, str]) -> None:
        if rel not in named:
            fa.problems.append("not named by the manifest: no turn record says what it holds")
        elif sha256_hex(data) != named[rel]:
            fa.problems.append("its sha256 is not the one its turn record names (replaced on the server)")
        else:
            self.hashes_checked += 1

    # -- tensors ------------------------------------------------------------------------
    def audit_tensors(self, fa: FileAudit, rel: str, data: bytes) -> None:
        try:
            header, end = _safetensors_header(data)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            fa.problems.append(f"not a safetensors file ({exc})")
            return
        optimizer = rel.startswith(OPTIMIZER_DIR + "/")
        meta = header.pop("__metadata__", None) or {}
        if not isinstance(meta, dict):
            fa.problems.append("its metadata is not a map of strings")
            meta = {}
        walk = FieldWalk(self.sites)
        for k, v in meta.items():
            if k == OPTIMIZER_JSON_KEY and optimizer:
                self.optimizer_json(walk, v)
            elif k not in _WEIGHTS_META or not isinstance(v, str):
                walk.note(f"metadata.{printable(str(k))[:64]}", "extra metadata", True, v)
            elif k in ("version", "turn"):
                walk.note(f"metadata.{k}", "scalar", not v.isdigit(), v)
            elif k == "format":
                ok = v in ("hemarelay-weights/1", "hemarelay-optimizer/1")
                walk.note("metadata.format", "keyword" if ok else "text", not ok, v)
            else:
                walk.string(v, str, f"metadata.{k}", k)
        fa.fields = walk.fields()
        self.n_tensor_files += 1
        self.tensor_files.append(rel)
        for name, info in header.items():
            self.n_tensors += 1
            problem, nbytes = self.tensor_problem(str(name), info, optimizer)
            offsets = info.get("data_offsets") if isinstance(info, dict) else None
            if not problem and (
                not isinstance(offsets, list) or len(offsets) != 2 or offsets[1] - offsets[0] != nbytes
            ):
                problem = "its data is not the size its type and shape say"
            if problem:
                fa.problems.append(f"tensor {printable(str(name))[:80]!r}: {problem}")
        if end != len(data):
            fa.problems.append(f"{len(data) - end} byte(s) after its tensors: the file holds more than its tensors")
        fa.fields.append(
            FieldInfo("tensors", f"{'optimizer moments' if optimizer else 'weights'}: {len(header)} tensors", 1)
        )

    def tensor_problem(self, name: str, info: object, optimizer: bool) -> tuple[str, int]:
        if not isinstance(info, dict) or not isinstance(info.get("shape"), list):
            return "not a tensor entry", 0
        dtype, shape = info.get("dtype"), tuple(int(s) for s in info["shape"] if isinstance(s, int))
        n = 1
        for s in shape:
            n *= s
        nbytes = n * _DTYPE_BYTES.get(str(dtype), 0)
        if self.net is None:
            return "", nbytes  # said once for the whole ring
        if optimizer:
            m = _OPTIMIZER_STATE.match(name)
            if not m or int(m.group(1)) >= len(self.net.parameters):
                return "not an optimizer moment of a parameter of the network", nbytes
            expected = self.net.parameters[int(m.group(1))]
            if m.group(2) == "step":
                return ("" if shape in ((), (1,)) else f"a step count of shape {shape}"), nbytes
            return ("" if shape == expected else f"shape {shape}, its parameter's is {expected}"), nbytes
        if name not in self.net.weights:
            return f"not a weight of the network {self.net.model_id}", nbytes
        if dtype not in _FLOAT_DTYPES:
            return f"type {printable(str(dtype))[:8]}, not a floating-point weight", nbytes
        if shape != self.net.weights[name]:
            return f"shape {shape}, the network's is {self.net.weights[name]}", nbytes
        return "", nbytes

    def optimizer_json(self, walk: FieldWalk, text: str) -> None:
        try:
            doc = json.loads(text)
        except (ValueError, TypeError, RecursionError):
            walk.note("metadata.optimizer", "not valid JSON", True, text[:80])
            return
        if not isinstance(doc, dict) or set(doc) - {"scalars", "param_groups"}:
            walk.note("metadata.optimizer.<key>", "key the ring does not write", True, str(doc)[:80])
            return
        for idx, values in (doc.get("scalars") or {}).items():
            ok = str(idx).isdigit() and isinstance(values, dict)
            for k, v in values.items() if ok else []:
                good = k in ("step",) and not isinstance(v, str)
                walk.note(
                    f"metadata.optimizer.scalars.<param>.{printable(str(k))[:40]}",
                    "scalar" if good else "text",
                    not good,
                    v,
                )
            if not ok:
                walk.note("metadata.optimizer.scalars.<key>", "key the ring does not write", True, idx)
        for group in doc.get("param_groups") or []:
            for k, v in group.items() if isinstance(group, dict) else []:
                flat = v if isinstance(v, list) else [v]
                good = k in _GROUP_KEYS and all(x is None or isinstance(x, (bool, int, float)) for x in flat)
                walk.note(
                    f"metadata.optimizer.param_groups[*].{printable(str(k))[:40]}",
                    "scalar" if good else "text",
                    not good,
                    v,
                )

    # -- the ring as a whole --------------------------------------------------------------
    def whole_ring(self, named: dict[str, str]) -> None:
        from .signing import config_sha256, verify_chain
        from .trust import Pin

        r, m = self.report, self.manifest
        model = m.model_id if m is not None else None
        if self.n_tensor_files and self.net is None:
            r.problems.append(
                f"tensor names and shapes could not be checked: this program does not know the network "
                f"'{printable(str(model))[:64]}' the ring trains"
            )
        if m is not None and m.config.signers and not m.legacy:
            try:
                v = verify_chain(m, Pin.of(m.config, config_sha256(m.config)), require_signed=False)
                if v.problem is not None:
                    r.problems.append(f"the turn history does not verify against the keys it lists: {v.problem}")
                signatures = f"{len(v.records)} turn record(s) verified against the keys the ring lists"
            except RingStateError as exc:
                r.problems.append(f"the turn history does not verify: {exc}")
                signatures = "signatures checked"
        else:
            signatures = "no signatures to check (an unsigned or older ring: nothing vouches for its records)"
        missing = sorted(f for f in named if f not in self.tensor_files)
        r.checked = [
            f"{self.n_read} file(s) read, {self.n_temp} of them temporary",
            f"{self.walk.keys} key(s) and {self.walk.strings} string(s) classified against the ring's schema",
            (
                f"{self.n_tensors} tensor(s) in {self.n_tensor_files} file(s) matched by name and shape to the "
                f"network {self.net.model_id}"
                if self.net is not None
                else f"{self.n_tensors} tensor(s) in {self.n_tensor_files} file(s), NOT matched to a network"
            ),
            f"{self.hashes_checked} weights/optimizer file(s) named by the manifest with the sha256 their record names"
            + (f" ({len(missing)} named file(s) pruned)" if missing else ""),
            signatures,
        ]


def _safetensors_header(data: bytes) -> tuple[dict, int]:
    """The header of safetensors bytes, and where its tensors' data ends (refused when
    their offsets overlap, leave gaps or run out of the file)."""
    header = read_header(data)
    n = int.from_bytes(data[:8], "little")
    spans = sorted(
        tuple(v["data_offsets"])
        for k, v in header.items()
        if k != "__metadata__" and isinstance(v, dict) and isinstance(v.get("data_offsets"), list)
    )
    at = 0
    for start, stop in spans:
        if start != at or stop < start:
            raise ValueError("its tensors' data overlap or leave gaps")
        at = stop
    if 8 + n + at > len(data):
        raise ValueError("its tensors' data run past the end of the file")
    return header, 8 + n + at


def audit_server(t: Transport, network: Callable[[str], NetworkShapes | None] = lambda _model_id: None) -> AuditReport:
    """Every entry of the ring folder, read and classified (see the module docstring);
    ``network`` gives the names and shapes of the network a model id names."""
    return _Audit(t, network).run()
