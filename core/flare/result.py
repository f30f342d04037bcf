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
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import InputError
from ..io.atomic import atomic_write_text

FORMAT = "hemarelay-flare/1"
RESULT_DIR = "hemarelay"
RECORD = "record.json"
BEST = "best.safetensors"
LATEST = "latest.safetensors"


@dataclass(frozen=True)
class FlareTurn:
    turn: int  # 0-based, over the whole job
    round: int  # 0-based NVFlare round (each site once per round)
    site: str
    val_loss: float
    improved: bool  # under the global patience rule
    patience_counter: int
    seconds: float  # from sending the task to receiving the result


@dataclass(frozen=True)
class PublishedWeights:
    file: str  # relative to the record's folder
    turn: int
    round: int
    site: str
    val_loss: float
    sha256: str  # of the tensors (core.model.weights.tensors_sha256)


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

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, allow_nan=False) + "\n"

    def write(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        return atomic_write_text(folder / RECORD, self.to_json())

    @classmethod
    def read(cls, path: Path) -> "FlareRecord":
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
            if d.get("format") != FORMAT:
                raise ValueError(f"format {d.get('format')!r}")
            d["turns"] = [FlareTurn(**t) for t in d["turns"]]
            for k in ("best", "latest"):
                d[k] = PublishedWeights(**d[k]) if d.get(k) else None
            return cls(**d)
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
            raise InputError(f"{path}: not a Hematoma Relay NVFlare record ({exc}).") from None

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
    src = path.parent / ref.file
    loaded = load_weights(src)
    if loaded.meta.sha256 != ref.sha256:
        raise InputError(
            f"{src}: its weights do not match the job's record (sha256 differs); "
            "the result folder was changed after the job wrote it."
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out, src.read_bytes())
    return Fetched(out, record, ref)
