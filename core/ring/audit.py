"""The site's own record of what crossed to and from the ring server.

One JSON object per line, appended locally (never uploaded): time, action
(``download``, ``upload``, ``lease``, ``lease_break``, ``publish``, ``release``),
the ring folder, file, version and sha256. A hospital's privacy officer can
check it against the server's manifest.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from ..user_dirs import state_dir
from .manifest import utc_now


def default_audit_path(site: str) -> Path:
    return state_dir() / f"ring-audit-{site}.jsonl"


@dataclass(frozen=True)
class AuditEntry:
    time: str
    site: str
    action: str
    server: str
    file: str = ""
    version: int | None = None
    sha256: str = ""
    bytes: int = 0
    detail: str = ""


class AuditLog:
    def __init__(self, path: Path | None, site: str, server: str) -> None:
        self.path, self.site, self.server = path, site, server

    def record(self, action: str, **fields: object) -> None:
        if self.path is None:
            return
        entry = AuditEntry(utc_now(), self.site, action, self.server, **fields)  # type: ignore[arg-type]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(asdict(entry)) + "\n")
            fh.flush()
            os.fsync(fh.fileno())


def read_audit(path: Path) -> list[AuditEntry]:
    out = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            out.append(AuditEntry(**json.loads(line)))
    return out
