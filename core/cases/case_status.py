"""The review status of each case of a folder: one small JSON file beside the cases.

``hemarelay-status.json`` holds, for each case, its status (new, in progress,
reviewed, approved for training), who set it and when, with the history of
changes, so approval for training survives restarts and can be audited; and
which cases were opened in the application (a case is marked reviewed only
after someone looked at it) or could not be read. Every write re-reads the
file under a short lock and replaces it atomically.
"""

from __future__ import annotations

import datetime as _dt
import enum
import getpass
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from ..io import atomic_write_text
from ..lock_files import short_lock
from .case_files import existing_mask

STATUS_FILE = "hemarelay-status.json"
FORMAT = 1


class CaseStatus(enum.Enum):
    NEW = "new"
    IN_PROGRESS = "in progress"
    REVIEWED = "reviewed"
    APPROVED = "approved for training"

    @classmethod
    def parse(cls, text: str) -> "CaseStatus":
        for s in cls:
            if s.value == text or s.name.lower() == str(text).lower():
                return s
        raise InputError(f"unknown case status {text!r}; one of: " + ", ".join(s.value for s in cls) + ".")


@dataclass(frozen=True)
class StatusRecord:
    status: CaseStatus
    user: str = ""  # who set it ("" for a case nobody touched)
    changed_at: str = ""  # ISO 8601 with time zone
    mask_sha256: str = ""  # approval: the sha256 of the mask file approved (a changed mask is not)

    def to_json(self) -> dict:
        d = {"status": self.status.value, "user": self.user, "changed_at": self.changed_at}
        return d | ({"mask_sha256": self.mask_sha256} if self.mask_sha256 else {})

    @classmethod
    def from_json(cls, d: dict) -> "StatusRecord":
        return cls(
            CaseStatus.parse(d["status"]),
            str(d.get("user", "")),
            str(d.get("changed_at", "")),
            str(d.get("mask_sha256", "")),
        )


NEW_RECORD = StatusRecord(CaseStatus.NEW)


def default_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name in the environment or passwd
        return "unknown"


def _now() -> str:
    return _dt.datetime.now().astimezone().isoformat(timespec="seconds")


class StatusStore:
    """The status file of one folder of cases."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / STATUS_FILE

    def _read_raw(self) -> dict:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {"format": FORMAT, "cases": {}}
        except OSError as exc:
            raise InputError(f"{self.path}: cannot read the case status file ({exc.strerror or exc}).") from None
        try:
            raw = json.loads(text)
            if not isinstance(raw, dict) or not isinstance(raw.get("cases"), dict):
                raise ValueError("no 'cases' table")
            for d in raw["cases"].values():
                StatusRecord.from_json(d)
        except (ValueError, KeyError, TypeError, AttributeError, InputError) as exc:
            raise InputError(
                f"{self.path}: the case status file is damaged ({exc}); statuses "
                "cannot be shown or changed until it is repaired or removed."
            ) from None
        return raw

    def read(self) -> dict[str, StatusRecord]:
        return {cid: StatusRecord.from_json(d) for cid, d in self._read_raw()["cases"].items()}

    def seen(self) -> tuple[set[str], dict[str, str]]:
        """The cases opened in the application at least once, and those whose scan could not
        be read (with why): a case is marked reviewed only after it was looked at."""
        raw = self._read_raw()
        opened, unreadable = raw.get("opened", {}), raw.get("unreadable", {})
        if not isinstance(opened, dict) or not isinstance(unreadable, dict):
            return set(), {}
        return set(opened), {str(k): str(v) for k, v in unreadable.items()}

    def mark_opened(self, case_id: str, user: str) -> None:
        """Record that ``user`` opened (and so could read) the case."""
        with short_lock(self.folder / STATUS_LOCK, "the case status file"):
            raw = self._read_raw()
            raw.setdefault("opened", {})[case_id] = {"user": user, "at": _now()}
            raw.get("unreadable", {}).pop(case_id, None)
            atomic_write_text(self.path, json.dumps(raw, indent=2, sort_keys=True) + "\n")

    def mark_unreadable(self, case_id: str, why: str) -> None:
        """Record that the case's scan could not be read (it cannot be marked reviewed)."""
        with short_lock(self.folder / STATUS_LOCK, "the case status file"):
            raw = self._read_raw()
            raw.setdefault("unreadable", {})[case_id] = why[:500]
            atomic_write_text(self.path, json.dumps(raw, indent=2, sort_keys=True) + "\n")

    def get(self, case_id: str) -> StatusRecord:
        return self.read().get(case_id, NEW_RECORD)

    def history(self, case_id: str) -> list[StatusRecord]:
        entry = self._read_raw()["cases"].get(case_id)
        if entry is None:
            return []
        return [StatusRecord.from_json(h) for h in entry.get("history", [])]

    def set(
        self,
        case_id: str,
        status: CaseStatus,
        user: str | None = None,
        when: str | None = None,
        expected: CaseStatus | None = None,
    ) -> StatusRecord:
        """Record ``status``; with ``expected``, only if the case still has that status
        (compare-and-swap: a window acting on what it showed a while ago cannot
        overwrite a newer change). The read-modify-write runs under the folder's
        status lock, so two windows changing two cases never lose one change."""
        with short_lock(self.folder / STATUS_LOCK, "the case status file"):
            raw = self._read_raw()  # re-read: another window may have written since
            entry = raw["cases"].get(case_id, {})
            current = StatusRecord.from_json(entry) if entry else NEW_RECORD
            if expected is not None and current.status is not expected:
                who = f" by {current.user}" if current.user else ""
                raise StatusConflictError(
                    f"Case {case_id} is now '{current.status.value}' (changed{who} at "
                    f"{current.changed_at[:16].replace('T', ' ') or 'an unknown time'}), not "
                    f"'{expected.value}' as shown here; its status was not changed. Look again and retry."
                )
            # Approval is of a mask: its bytes' hash is recorded, and a changed file is no longer approved.
            mask_hash = mask_sha256(existing_mask(self.folder, case_id)) if status is CaseStatus.APPROVED else ""
            record = StatusRecord(status, user if user is not None else default_user(), when or _now(), mask_hash)
            history = list(entry.get("history", []))
            history.append(record.to_json())
            raw["cases"][case_id] = {**record.to_json(), "history": history}
            raw["format"] = FORMAT
            atomic_write_text(self.path, json.dumps(raw, indent=2, sort_keys=True) + "\n")
        return record


class StatusConflictError(InputError):
    """The case's status changed since it was shown (compare-and-swap failed)."""


class UnopenedCasesError(InputError):
    """Marking cases reviewed (or approved) that nobody opened here: asks for a confirmation."""

    def __init__(self, labels: list[str], status: "CaseStatus") -> None:
        self.labels = list(labels)
        self.status = status
        names = ", ".join(self.labels)
        super().__init__(
            f"Case(s) {names} have not been opened here: nobody has looked at their scan and mask "
            f"in this program. Mark them '{status.value}' anyway?"
        )


STATUS_LOCK = ".hemarelay-status.lock"


def mask_sha256(path: Path | None) -> str:
    """The sha256 of a saved mask file ("" when there is none)."""
    if path is None:
        return ""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return ""
