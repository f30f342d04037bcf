"""Which of this site's cases each of its own training turns used.

A model version must be judged on cases it has not learnt from. In cyclic
weight transfer every turn starts from the previous turn's weights, so a
version carries what this site's earlier turns learnt too: the cases "in" a
version are those of every turn of this site up to and including it.

Kept beside the model versions (``<state>/models/<ring>/trained-on.json``),
on this computer only: the ring never sees case names or paths.
"""

from __future__ import annotations

import datetime as _dt
import json
import threading
from pathlib import Path

from ..errors import InputError
from ..io import atomic_write_text

FILE = "trained-on.json"
FORMAT = 1
_LOCK = threading.Lock()


def case_key(ct_path: str | Path) -> str:
    """A case's identity in the record: its CT's resolved path."""
    return str(Path(ct_path).expanduser().resolve())


class TrainedCases:
    def __init__(self, folder: Path) -> None:
        self.path = Path(folder) / FILE

    def _read(self) -> dict:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {"format": FORMAT, "turns": []}
        except (OSError, ValueError) as exc:
            raise InputError(
                f"{self.path}: the record of the cases this site trained on cannot be "
                f"read ({exc}); without it new versions cannot be judged fairly."
            ) from None
        if not isinstance(raw, dict) or not isinstance(raw.get("turns"), list):
            raise InputError(f"{self.path}: the record of the cases this site trained on is damaged.")
        return raw

    def record(self, version: int, cts: list[Path] | list[str]) -> None:
        """This site's turn that published ``version`` trained on ``cts``."""
        with _LOCK:
            raw = self._read()
            raw["turns"] = [t for t in raw["turns"] if t.get("version") != version]
            raw["turns"].append(
                {
                    "version": int(version),
                    "cases": sorted(case_key(c) for c in cts),
                    "at": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
                }
            )
            atomic_write_text(self.path, json.dumps(raw, indent=1) + "\n")

    def used_by(self, version: int) -> set[str]:
        """Case keys learnt by ``version``: this site's turns up to and including it."""
        return {c for t in self._read()["turns"] if int(t.get("version", 0)) <= version for c in t.get("cases", [])}

    def own_versions(self) -> set[int]:
        return {int(t["version"]) for t in self._read()["turns"] if "version" in t}
