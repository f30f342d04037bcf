"""What the NVFlare job publishes, and ``hemarelay flare fetch``.

The server workflow (:mod:`core.flare.controller`) writes, in the job's run
folder on the NVFlare server (which an admin downloads with the job result,
and which the simulator leaves in its workspace)::

    hemarelay/record.json          the run: sites, order, every turn's site,
                                   round and validation loss, the convergence verdict
    hemarelay/best.safetensors     the weights with the lowest validation loss
    hemarelay/latest.safetensors   the weights of the last turn

Both weights files are model files that ``hemarelay predict`` and the desktop
application load, with provenance naming the NVFlare job, round, turn and site.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import ClassVar

from ..errors import InputError, printable
from ..io.atomic import atomic_write_text
from ..ring.names import check_name
from ..ring.schema import decode

FORMAT = "hemarelay-flare/1"
RESULT_DIR = "hemarelay"
RECORD = "record.json"
BEST = "best.safetensors"
LATEST = "latest.safetensors"


MAX_RECORD_BYTES = 16 << 20  # a record is about 200 bytes a turn
STATUSES = ("running", "converged", "max_rounds", "stopped", "failed")
_JOB_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


@dataclass(frozen=True)
class FlareTurn:
    turn: int  # 0-based, over the whole job
    round: int  # 0-based NVFlare round (each site once per round)
    site: str
    val_loss: float
    improved: bool  # under the global patience rule
    patience_counter: int
    seconds: float  # from sending the task to receiving the result

    NAMES: ClassVar = {"site": "site"}


@dataclass(frozen=True)
class PublishedWeights:
    file: str  # relative to the record's folder: best.safetensors or latest.safetensors
    turn: int
    round: int
    site: str
    val_loss: float
    sha256: str  # of the tensors (core.model.weights.tensors_sha256)

    NAMES: ClassVar = {"site": "site", "sha256": "sha256"}

    def check(self, where: str) -> None:
        if self.file not in (BEST, LATEST):  # a record never sends fetch outside its folder
            raise ValueError(f"{where}.file is not {BEST} or {LATEST}")


@dataclass
class FlareRecord:
    job_name: str
    job_id: str
    model_id: str
    sites: list[str]
    order: str
    seed: int
    max_rounds: int
    patience: int
    min_delta: float
    epochs_per_turn: int
    status: str = "running"  # running, converged, max_rounds, stopped (aborted), failed
    explanation: str = ""
    turns: list[FlareTurn] = field(default_factory=list)
    best: PublishedWeights | None = None
    latest: PublishedWeights | None = None
    format: str = FORMAT

    NAMES: ClassVar = {"model_id": "model id"}

    def check(self, where: str) -> None:
        for s in self.sites:
            check_name("site", s, "sites")
        if self.status not in STATUSES or self.order not in ("fixed", "shuffle", "random"):
            raise ValueError("status or order is not one the job writes")
        if not _JOB_RE.match(self.job_name) or (self.job_id and not _JOB_RE.match(self.job_id)):
            raise ValueError("the job's name or id is not a plain name")
        if len(self.explanation) > 2000:
            raise ValueError("explanation too long")

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, allow_nan=False) + "\n"

    def write(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        return atomic_write_text(folder / RECORD, self.to_json())

    @classmethod
    def read(cls, path: Path) -> "FlareRecord":
        """The record at ``path``, every field checked (:mod:`core.ring.schema`), read only
        if it is a plain file of at most :data:`MAX_RECORD_BYTES`."""
        try:
            if path.is_symlink() or path.stat().st_size > MAX_RECORD_BYTES:
                raise ValueError("a link, or larger than a record can be")
            d = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(d, dict) or d.get("format") != FORMAT:
                raise ValueError(f"format {printable(repr(d.get('format') if isinstance(d, dict) else d))[:60]}")
            return decode(cls, d, "")
        except RecursionError:
            raise InputError(f"{path}: not a Hematoma Relay NVFlare record (nested too deeply).") from None
        except (OSError, ValueError, TypeError, KeyError, AttributeError, UnicodeDecodeError) as exc:
            raise InputError(f"{path}: not a Hematoma Relay NVFlare record ({printable(str(exc))[:200]}).") from None

    @property
    def site_order(self) -> list[str]:
        return [t.site for t in self.turns]


def provenance(record: FlareRecord, turn: FlareTurn) -> tuple[str, dict]:
    """The version label and training summary of a weights file the job publishes."""
    label = (
        f"NVFlare job {record.job_name} ({record.job_id}) round {turn.round + 1} turn {turn.turn + 1} site {turn.site}"
    )
    return label, {
        "source": "NVFlare cyclic job",
        "nvflare_job": record.job_name,
        "nvflare_job_id": record.job_id,
        "round": turn.round + 1,
        "turn": turn.turn + 1,
        "site": turn.site,
        "sites": list(record.sites),
        "order": record.order,
        "epochs_per_turn": record.epochs_per_turn,
    }


def find_records(root: Path) -> list[Path]:
    """Records under a job result, a simulator workspace or a run folder."""
    root = Path(root)
    if root.is_file() and root.name == RECORD:
        return [root]
    if not root.is_dir():
        raise InputError(f"{root}: folder not found.")
    return sorted(root.rglob(f"{RESULT_DIR}/{RECORD}"))


@dataclass(frozen=True)
class Fetched:
    path: Path
    record: FlareRecord
    weights: PublishedWeights


def fetch_model(root: Path, out: Path, which: str = "best", job: str | None = None) -> Fetched:
    """Copy the job's best (or latest) model file to ``out``, after checking it
    loads and its tensors match the record's sha256."""
    from ..io.atomic import atomic_write_bytes
    from ..model.weights import load_weights

    records = [(p, FlareRecord.read(p)) for p in find_records(root)]
    if job is not None:
        records = [(p, r) for p, r in records if job in (r.job_id, r.job_name)]
    if not records:
        raise InputError(
            f"{root}: no Hematoma Relay NVFlare job result in it (looked for "
            f"{RESULT_DIR}/{RECORD}); give the job's downloaded result or the "
            "simulator's workspace."
        )
    if len({r.job_id for _, r in records}) > 1:
        raise InputError(
            f"{root} holds several NVFlare jobs ("
            + ", ".join(sorted({r.job_id for _, r in records}))
            + "); choose one with --job."
        )
    path, record = records[0]
    if which not in ("best", "latest"):
        raise InputError(f"--which {which!r}: choose best or latest.")
    ref = record.best if which == "best" else record.latest
    if ref is None:
        raise InputError(f"{path}: the job published no weights yet (no turn finished).")
    src = path.parent / ref.file  # ref.file is best.safetensors or latest.safetensors (FlareRecord.read)
    if src.is_symlink() or src.resolve().parent != path.parent.resolve():
        raise InputError(f"{src}: not a plain file in the job's result folder; refused.")
    loaded = load_weights(src)
    if loaded.meta.sha256 != ref.sha256:
        raise InputError(
            f"{src}: its weights do not match the job's record (sha256 differs); "
            "the result folder was changed after the job wrote it."
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out, src.read_bytes())
    return Fetched(out, record, ref)
