"""Test scanners: proof that a ring server (or an NVFlare server) holds nothing
but weights, optimizer state and scalars, from one site's point of view.

Unlike ``hemarelay ring audit`` (core/ring/server_audit.py, which needs nothing
from a site), these look for the site's own case names and paths.

:func:`scan_server_dir` inspects every file under a ring folder (a local path:
the folder itself or a mounted copy) and reports anything that is not one of the
ring's own files, any text naming a site's cases or paths, any path-like text
and any tensor that is not a model weight (by name and shape) or an optimizer
moment of one. Binary tensor data is not searched for text (random float bytes
would match short case ids); it is checked by names and shapes instead.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from core.ring.codec import OPTIMIZER_JSON_KEY, read_header
from core.ring.manifest import BROKEN_LEASES_DIR, LEASE, MANIFEST, OPTIMIZER_DIR, WEIGHTS_DIR

_CASE_FILE_RE = re.compile(r"^(?:ct|mask)_(.+?)\.")
_CASE_DIR_RE = re.compile(r"^ct_(.+)$")
_ALLOWED = [
    (re.compile(rf"^{re.escape(MANIFEST)}$"), "json"),
    (re.compile(rf"^{re.escape(LEASE)}$"), "json"),
    (re.compile(rf"^{BROKEN_LEASES_DIR}/broken-[0-9TZ]+-[A-Za-z0-9_-]+-[0-9a-f]+\.json$"), "json"),
    (re.compile(rf"^{WEIGHTS_DIR}/v\d{{6,}}-[A-Za-z0-9_-]+-[0-9a-f]+\.safetensors$"), "weights"),
    (re.compile(rf"^{OPTIMIZER_DIR}/v\d{{6,}}-[A-Za-z0-9_-]+-[0-9a-f]+\.safetensors$"), "optimizer"),
]
_REL_REF_RE = re.compile(r"^(weights|optimizer)/v\d{6,}-[A-Za-z0-9_-]+-[0-9a-f]+\.safetensors$")


@dataclass(frozen=True)
class PrivacyFinding:
    file: str  # relative to the ring folder
    problem: str


def forbidden_terms(data_dir: Path) -> set[str]:
    """What must never reach the server from a site folder: its absolute path,
    every file's path, name and stem, CT-ICH case ids (``ct_049`` -> ``049``), and for
    a DICOM case folder (``ct_<id>/``, a series from the PACS) its name, its case id and
    the patient and study identifiers of its images."""
    data_dir = Path(data_dir)
    terms = {str(data_dir), str(data_dir.resolve())}
    for p in data_dir.rglob("*"):
        if p.is_dir() and _CASE_DIR_RE.match(p.name):  # a DICOM case (ct_<id>/, e.g. from the PACS)
            terms |= {str(p.resolve()), p.name, _CASE_DIR_RE.match(p.name).group(1), *_dicom_terms(p)}
        if not p.is_file():
            continue
        terms |= {str(p.resolve()), p.name, p.name.split(".")[0]}
        m = _CASE_FILE_RE.match(p.name)
        if m:
            terms.add(m.group(1))
    return {t for t in terms if len(t) >= 2}


def _dicom_terms(folder: Path) -> set[str]:
    """Who and what a DICOM case folder is about (from its first image's header): patient id,
    name and its parts, accession number, study and series UIDs."""
    import pydicom

    for f in sorted(folder.iterdir()):
        if not f.is_file() or f.name.startswith("."):
            continue
        try:
            ds = pydicom.dcmread(str(f), stop_before_pixels=True)
        except Exception:  # noqa: BLE001 - not a DICOM file: the next one
            continue
        name = str(ds.get("PatientName", "") or "")
        values = [name, *name.split("^")]
        values += [str(ds.get(k, "") or "") for k in ("PatientID", "AccessionNumber")]
        values += [str(ds.get(k, "") or "") for k in ("StudyInstanceUID", "SeriesInstanceUID")]
        return {v.strip() for v in values if len(v.strip()) >= 3}
    return set()


def _term_patterns(terms: Iterable[str]) -> list[tuple[str, re.Pattern[str]]]:
    # Whole tokens only: "049" must not match inside a sha256 or "v000049", and
    # an all-digit id not inside a printed number ("0.049").
    out = []
    for t in sorted(set(terms)):
        edge = "A-Za-z0-9." if t.isdigit() else "A-Za-z0-9"
        out.append((t, re.compile(rf"(?<![{edge}]){re.escape(t)}(?![{edge}])", re.IGNORECASE)))
    return out


def _looks_like_path(s: str) -> bool:
    if _REL_REF_RE.match(s):
        return False
    return (
        s.startswith(("/", "~", "\\"))
        or "\\" in s
        or bool(re.match(r"^[A-Za-z]:[\\/]", s))
        or s.endswith((".nii", ".nii.gz", ".dcm", ".npz", ".npy"))
    )


class _Scanner:
    """Looks for ``terms`` (whole tokens) and path-like text. ``ours`` texts are the
    ring's or job's own files, where every term counts; in other files (NVFlare's
    logs) case ids made of digits alone are skipped: they are indistinguishable from
    a timestamp's milliseconds (``10:09:15,049``)."""

    def __init__(self, terms: Iterable[str], max_json_numbers: int | None = None) -> None:
        self.patterns = _term_patterns(terms)
        self.named = [(t, p) for t, p in self.patterns if not t.isdigit()]
        self.max_json_numbers = max_json_numbers
        self.findings: list[PrivacyFinding] = []

    def text(self, rel: str, s: str, what: str, ours: bool = True) -> None:
        for term, pat in self.patterns if ours else self.named:
            if pat.search(s):
                self.findings.append(PrivacyFinding(rel, f"{what} contains '{term}' from the site's data"))
        if ours and _looks_like_path(s):
            self.findings.append(PrivacyFinding(rel, f"{what} looks like a file path: {s[:80]!r}"))

    def json_value(self, rel: str, v: Any, where: str) -> None:
        if isinstance(v, str):
            self.text(rel, v, where)
        elif isinstance(v, dict):
            for k, x in v.items():
                self.text(rel, str(k), f"key {where}.{k}")
                self.json_value(rel, x, f"{where}.{k}")
        elif isinstance(v, list):
            n_numbers = sum(isinstance(x, (int, float)) for x in v)
            if self.max_json_numbers is not None and n_numbers > self.max_json_numbers:
                self.findings.append(PrivacyFinding(rel, f"{where} is an array of {len(v)} numbers"))
            for i, x in enumerate(v):
                self.json_value(rel, x, f"{where}[{i}]")
        elif not (v is None or isinstance(v, (bool, int, float))):
            self.findings.append(PrivacyFinding(rel, f"{where} is not a plain value"))


def scan_server_dir(  # noqa: C901 - one walk that applies every check a server file gets
    root: Path,
    forbidden: Iterable[str],
    weight_shapes: Mapping[str, tuple[int, ...]] | None = None,
    max_json_numbers: int = 64,
) -> list[PrivacyFinding]:
    """Every problem found under ``root`` (empty list: clean).

    ``weight_shapes`` is the model's ``{name: shape}``; without it the first
    weights file found is the reference that every other one must match.
    """
    root = Path(root)
    sc = _Scanner(forbidden, max_json_numbers)
    files = sorted(p for p in root.rglob("*") if p.is_file() or p.is_symlink())
    expected = dict(weight_shapes) if weight_shapes is not None else None
    tensor_files: list[tuple[str, str, dict[str, Any]]] = []
    for p in files:
        rel = p.relative_to(root).as_posix()
        sc.text(rel, rel, "file name")
        kind = next((k for pat, k in _ALLOWED if pat.match(rel)), None)
        if kind is None or p.is_symlink():
            sc.findings.append(PrivacyFinding(rel, "not a file the ring writes"))
            continue
        data = p.read_bytes()
        if kind == "json":
            try:
                sc.json_value(rel, json.loads(data), "$")
            except (ValueError, UnicodeDecodeError):
                sc.findings.append(PrivacyFinding(rel, "not valid JSON"))
            continue
        try:
            header = read_header(data)
        except ValueError as exc:
            sc.findings.append(PrivacyFinding(rel, f"not a safetensors file ({exc})"))
            continue
        meta = dict(header.get("__metadata__") or {})
        embedded = meta.pop(OPTIMIZER_JSON_KEY, None)  # JSON inside a header string: walk it
        sc.json_value(rel, meta, "metadata")
        if embedded is not None:
            try:
                sc.json_value(rel, json.loads(embedded), "metadata.optimizer")
            except (ValueError, TypeError):
                sc.findings.append(PrivacyFinding(rel, "optimizer metadata is not valid JSON"))
        tensors = {k: v for k, v in header.items() if k != "__metadata__"}
        for name in tensors:
            sc.text(rel, name, f"tensor name {name!r}")
        tensor_files.append((rel, kind, tensors))
        if kind == "weights" and expected is None:
            expected = {k: tuple(v["shape"]) for k, v in tensors.items()}
    shapes = set((expected or {}).values())
    for rel, kind, tensors in tensor_files:
        got = {k: tuple(v["shape"]) for k, v in tensors.items()}
        if kind == "weights":
            for k in sorted(set(got) ^ set(expected or {})):
                sc.findings.append(PrivacyFinding(rel, f"tensor {k!r} is not a weight of the model"))
            for k in sorted(set(got) & set(expected or {})):
                if got[k] != expected[k]:  # type: ignore[index]
                    sc.findings.append(
                        PrivacyFinding(rel, f"tensor {k!r} has shape {got[k]}, the model's is {expected[k]}")
                    )  # type: ignore[index]
        else:
            for k, shape in got.items():
                if not re.match(r"^state\.\d+\.[A-Za-z0-9_]+$", k):
                    sc.findings.append(PrivacyFinding(rel, f"tensor {k!r} is not optimizer state"))
                elif shape not in shapes and shape not in ((), (1,)):
                    sc.findings.append(
                        PrivacyFinding(rel, f"optimizer tensor {k!r} of shape {shape} matches no model weight")
                    )
    return sc.findings


# -- an NVFlare server after a Hematoma Relay job ------------------------------------

FLARE_RESULT = {"hemarelay/record.json": "record", "hemarelay/best.safetensors": "weights"}
FLARE_RESULT["hemarelay/latest.safetensors"] = "weights"
_TEXT_SUFFIXES = (".txt", ".json", ".py", ".log", ".csv", ".yml", ".yaml", ".conf")


def scan_server_workspace(
    root: Path, forbidden: Iterable[str], weight_shapes: Mapping[str, tuple[int, ...]]
) -> list[PrivacyFinding]:
    """Every problem under an NVFlare server's workspace (the simulator's
    ``WORKSPACE/server``, or a downloaded job result); empty list: clean. The job's
    own files (``hemarelay/``) may hold nothing but weight tensors of the network's
    names and shapes, numbers, site names and fixed words; NVFlare's files must not
    name a site's data folder, case files or paths."""
    root = Path(root)
    sc = _Scanner(forbidden)
    ours_seen = 0
    for p in sorted(root.rglob("*")):
        if p.is_dir():
            continue
        rel = p.relative_to(root).as_posix()
        sc.text(rel, rel, "file name", False)
        kind = FLARE_RESULT.get("/".join(rel.split("/")[-2:]))
        if p.is_symlink():
            sc.findings.append(PrivacyFinding(rel, "a link"))
            continue
        data = p.read_bytes()
        if kind == "record":
            ours_seen += 1
            try:
                sc.json_value(rel, json.loads(data), "$")
            except ValueError:
                sc.findings.append(PrivacyFinding(rel, "not valid JSON"))
        elif kind == "weights":
            ours_seen += 1
            try:
                header = read_header(data)
            except ValueError as exc:
                sc.findings.append(PrivacyFinding(rel, f"not a safetensors file ({exc})"))
                continue
            for key, value in (header.pop("__metadata__", None) or {}).items():
                try:
                    sc.json_value(rel, json.loads(value), f"metadata.{key}")
                except ValueError:
                    sc.text(rel, value, f"metadata.{key}")
            got = {k: tuple(v["shape"]) for k, v in header.items()}
            for k in sorted(set(got) ^ set(weight_shapes)):
                sc.findings.append(PrivacyFinding(rel, f"tensor {k!r} is not a weight of the model"))
            for k in sorted(set(got) & set(weight_shapes)):
                if got[k] != tuple(weight_shapes[k]):
                    sc.findings.append(PrivacyFinding(rel, f"tensor {k!r} has shape {got[k]}"))
        elif p.suffix in _TEXT_SUFFIXES or p.name.startswith("log"):
            sc.text(rel, data.decode("utf-8", errors="replace"), "its text", False)
        else:
            sc.findings.append(
                PrivacyFinding(rel, "not a file NVFlare or the job writes as text, nor one of the job's weights files")
            )
    if not ours_seen:
        sc.findings.append(PrivacyFinding(".", "no hemarelay/record.json or weights: not a job's server"))
    return sc.findings
