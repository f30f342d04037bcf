"""What an NVFlare server holds after a Hematoma Relay job: weights and scalars only.

:func:`scan_server_workspace` inspects every file under the server's workspace
(the simulator's ``WORKSPACE/server``, or a downloaded job result): the job's
own files (``hemarelay/``: the record and the model files) may hold nothing but
weight tensors of the network's names and shapes, numbers, site names and fixed
words, never a path; NVFlare's files (configuration, logs, statistics) must not
name a site's data folder, case files or paths. Case ids made of digits alone
are looked for in our files only: in NVFlare's logs they are indistinguishable
from the milliseconds of a timestamp (``10:09:15,049``); the case file names,
stems and paths are looked for everywhere.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterable, Mapping

from ..ring.codec import read_header
from ..ring.privacy import PrivacyFinding, forbidden_terms  # noqa: F401  (re-exported for tests)
from .result import BEST, LATEST, RECORD, RESULT_DIR

_OURS = {f"{RESULT_DIR}/{RECORD}": "record", f"{RESULT_DIR}/{BEST}": "weights", f"{RESULT_DIR}/{LATEST}": "weights"}
_TEXT_SUFFIXES = (".txt", ".json", ".py", ".log", ".csv", ".yml", ".yaml", ".conf")


def _pattern(term: str) -> re.Pattern[str]:
    # Whole tokens, as core.ring.privacy matches them: "049" not inside "v000049" or "0.049".
    edge = "A-Za-z0-9." if term.isdigit() else "A-Za-z0-9"
    return re.compile(rf"(?<![{edge}]){re.escape(term)}(?![{edge}])", re.IGNORECASE)


def _is_path(s: str) -> bool:
    return (
        s.startswith(("/", "~", "\\"))
        or "\\" in s
        or bool(re.match(r"^[A-Za-z]:[\\/]", s))
        or s.endswith((".nii", ".nii.gz", ".dcm", ".npz", ".npy"))
    )


class _Scan:
    def __init__(self, terms: Iterable[str]) -> None:
        terms = sorted(set(terms))
        self.all = [(t, _pattern(t)) for t in terms]
        self.named = [(t, p) for t, p in self.all if not t.isdigit()]
        self.findings: list[PrivacyFinding] = []

    def text(self, rel: str, s: str, what: str, ours: bool) -> None:
        for term, pat in self.all if ours else self.named:
            if pat.search(s):
                self.findings.append(PrivacyFinding(rel, f"{what} contains '{term}' from a site's data"))
        if ours and _is_path(s):
            self.findings.append(PrivacyFinding(rel, f"{what} looks like a file path: {s[:80]!r}"))

    def json_value(self, rel: str, v: Any, where: str) -> None:
        if isinstance(v, str):
            self.text(rel, v, where, True)
        elif isinstance(v, dict):
            for k, x in v.items():
                self.text(rel, str(k), f"key {where}.{k}", True)
                self.json_value(rel, x, f"{where}.{k}")
        elif isinstance(v, list):
            for i, x in enumerate(v):
                self.json_value(rel, x, f"{where}[{i}]")
        elif not (v is None or isinstance(v, (bool, int, float))):
            self.findings.append(PrivacyFinding(rel, f"{where} is not a plain value"))


def scan_server_workspace(
    root: Path, forbidden: Iterable[str], weight_shapes: Mapping[str, tuple[int, ...]]
) -> list[PrivacyFinding]:
    """Every problem found under ``root`` (empty list: clean)."""
    root = Path(root)
    sc = _Scan(forbidden)
    ours_seen = 0
    for p in sorted(root.rglob("*")):
        if p.is_dir():
            continue
        rel = p.relative_to(root).as_posix()
        sc.text(rel, rel, "file name", False)
        tail = "/".join(rel.split("/")[-2:])
        kind = _OURS.get(tail)
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
                    sc.text(rel, value, f"metadata.{key}", True)
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
        sc.findings.append(PrivacyFinding(".", f"no {RESULT_DIR}/{RECORD} or weights: not a job's server"))
    return sc.findings
