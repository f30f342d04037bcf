"""Every model version this site has seen, kept locally with its origin.

``<state>/models/<ring id>/`` holds one predict-ready weights file per
version (``v000007-b-1a2b3c4d5e6f.safetensors``) and ``index.json``: for each
version the site that trained it, the ring round and turn, the sha256 of the
bytes the ring published (checked on download), when it arrived here, its
validation loss on the training site, this site's own scores once evaluated,
and which version this site uses. Any kept version can be chosen again
(roll back). Version numbers are the ring's, so one folder per ring.

The default model shipped with the program is listed too, as version 0
(:data:`SHIPPED`; ring versions start at 1): it is the model in use until the
site chooses another, is judged on the site's cases like any version, and can
be chosen again at any time, so a weaker ring version never replaces it for
good.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import threading
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from ..errors import InputError
from ..evaluation.scoring import CaseScore
from ..io import atomic_write_text
from ..ring.manifest import Manifest, TurnRecord
from ..ring.names import check_name, inside
from .setup import state_dir

INDEX = "index.json"
FORMAT = 1
MAX_VERSIONS = 30  # versions kept on this computer per ring (a hostile ring cannot fill the disk)
SHIPPED = 0  # the version number of the default model shipped with the program (ring versions start at 1)
_LOCK = threading.Lock()  # the sync worker and the GUI both update the index


@dataclass(frozen=True)
class LocalScore:
    """A model version measured on this site's reviewed cases that it was not trained on
    (how it is judged: :mod:`core.site.gates`)."""

    n_cases: int
    mean_dice: float  # nan when no case could be scored
    mean_abs_volume_error_ml: float
    cases: tuple[CaseScore, ...] = ()
    evaluated_at: str = ""
    n_excluded: int = 0  # reviewed cases left out: this site trained this version on them

    @property
    def n_lesion_cases(self) -> int:
        return sum(c.manual_ml > 0 for c in self.cases)

    @property
    def n_normal_cases(self) -> int:
        return sum(c.manual_ml == 0 for c in self.cases)

    @property
    def dice_on_lesions(self) -> float:
        """Mean Dice on the cases whose reviewed mask has hematoma (nan without any)."""
        d = [c.dice for c in self.cases if c.manual_ml > 0]
        return sum(d) / len(d) if d else float("nan")

    @property
    def false_positive_ml(self) -> float:
        """Mean predicted volume on reviewed normal cases (nan without any)."""
        v = [c.auto_ml for c in self.cases if c.manual_ml == 0]
        return sum(v) / len(v) if v else float("nan")

    # how it reads to the user, and whether it is enough to judge by: core.site.gates.describe


@dataclass(frozen=True)
class ModelVersion:
    version: int
    site: str  # the site whose turn produced it
    round: int  # 0-based ring round
    turn: int  # 0-based ring turn
    sha256: str  # of the weights bytes as published by the ring
    received_at: str  # when this site downloaded it (local time, ISO 8601)
    file: str  # the predict-ready weights file, in the store's folder
    model_id: str
    ring_id: str
    val_loss: float | None = None  # on the training site's validation patches
    best_when_received: bool = False  # the ring's best weights at that moment
    score: LocalScore | None = None
    # sha256 of the weights tensors: what a prediction's provenance records (the ring's
    # ``sha256`` above is of the published file's bytes, a different hash of the same weights)
    tensors_sha256: str = ""
    name: str = ""  # the shipped default model's version name ("default-2026.11.30")

    @property
    def shipped(self) -> bool:
        return self.version == SHIPPED

    def hash_text(self) -> str:
        """The hash the application shows for this version, saying which hash it is."""
        if self.tensors_sha256:
            return f"tensors sha256 {self.tensors_sha256[:12]}"
        return f"file sha256 {self.sha256[:12]}"

    def label(self) -> str:
        if self.shipped:
            return f"the default model {self.name}, shipped with the program"
        return f"v{self.version} (site {self.site}, round {self.round + 1})"

    def short(self) -> str:
        """ "v3", or "default" for the shipped model (tables, buttons)."""
        return "default" if self.shipped else f"v{self.version}"

    @staticmethod
    def from_json(d: dict) -> "ModelVersion":
        score = d.get("score")
        return ModelVersion(**{**d, "score": _score_from_json(score) if score is not None else None})


def _score_from_json(score: dict) -> LocalScore:
    return LocalScore(**{**score, "cases": tuple(CaseScore.from_json(c) for c in score.get("cases", ()))})


@dataclass
class StoreIndex:
    ring_id: str
    versions: list[ModelVersion] = field(default_factory=list)
    chosen: int | None = None  # the version this site uses for predictions (None: the shipped model)
    shipped_score: LocalScore | None = None  # the shipped default model's score at this site


def shipped_version(score: LocalScore | None = None, ring_id: str = "") -> ModelVersion | None:
    """The default model shipped with the program as a row of the versions table (None when
    this installation has none). Reads its card only: no torch."""
    from ..model.default import has_default_model, read_card

    if not has_default_model():
        return None
    try:
        card = read_card()
    except InputError:
        return None
    grid = card.get("input", {})
    return ModelVersion(
        SHIPPED,
        "shipped",
        0,
        0,
        str(card["file_sha256"]),
        "",
        str(card.get("file", "")),
        f"{card.get('architecture')}-ds{card.get('ds')}-{grid.get('in_plane_mm', 0):g}mm",
        ring_id,
        score=score,
        tensors_sha256=str(card.get("tensors_sha256", "")),
        name=str(card.get("version", "")),
    )


def _now() -> str:
    return _dt.datetime.now().astimezone().isoformat(timespec="seconds")


class ModelStore:
    def __init__(self, folder: Path, ring_id: str) -> None:
        self.folder = Path(folder)
        self.ring_id = ring_id

    @classmethod
    def for_ring(cls, ring_id: str, root: Path | None = None) -> "ModelStore":
        """The store of one ring; the ring id comes from the server, so it is checked
        (a valid id is 32 hex digits) and the folder must stay inside ``root``."""
        try:
            check_name("ring id", ring_id, "ring id")
        except ValueError as exc:
            raise InputError(f"The ring server gave an invalid ring id ({exc}); nothing was kept.") from None
        base = root or state_dir() / "models"
        return cls(inside(base, ring_id[:16]), ring_id)

    # ----------------------------------------------------------- index
    def _read(self) -> StoreIndex:
        path = self.folder / INDEX
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return StoreIndex(self.ring_id)
        except (OSError, ValueError) as exc:
            raise InputError(
                f"{path}: the local list of model versions cannot be read ({exc}); move it aside to start a new list."
            ) from None
        try:
            shipped = raw.get("shipped_score")
            return StoreIndex(
                raw["ring_id"],
                [ModelVersion.from_json(v) for v in raw["versions"]],
                raw.get("chosen"),
                _score_from_json(shipped) if shipped is not None else None,
            )
        except (KeyError, TypeError) as exc:
            raise InputError(f"{path}: the local list of model versions is damaged ({exc}).") from None

    def _write(self, idx: StoreIndex) -> None:
        doc = {
            "format": FORMAT,
            "ring_id": idx.ring_id,
            "chosen": idx.chosen,
            "versions": [asdict(v) for v in idx.versions],
            "shipped_score": asdict(idx.shipped_score) if idx.shipped_score is not None else None,
        }
        atomic_write_text(self.folder / INDEX, json.dumps(doc, indent=1) + "\n")

    def _shipped(self, idx: StoreIndex) -> ModelVersion | None:
        return shipped_version(idx.shipped_score, self.ring_id)

    def versions(self) -> list[ModelVersion]:
        """The versions table: the ring's versions newest first, then the shipped default model."""
        idx = self._read()
        shipped = self._shipped(idx)
        return sorted(idx.versions, key=lambda v: -v.version) + ([shipped] if shipped is not None else [])

    def ring_versions(self) -> list[ModelVersion]:
        """The ring's versions kept here, newest first."""
        return sorted(self._read().versions, key=lambda v: -v.version)

    def get(self, version: int) -> ModelVersion:
        for v in self.versions():
            if v.version == version:
                return v
        raise InputError(f"Model version {version} is not kept on this computer.")

    def has(self, sha256: str) -> bool:
        return any(v.sha256 == sha256 for v in self._read().versions)

    def path(self, v: ModelVersion) -> Path:
        if v.shipped:
            from ..model.default import default_model_path

            return default_model_path()
        return inside(self.folder, v.file)

    def trained_cases(self):
        """This site's record of the cases each of its own turns trained on."""
        from .trained_cases import TrainedCases

        return TrainedCases(self.folder)

    def chosen(self) -> ModelVersion | None:
        """The version in use: the chosen one, else the shipped default model (None without one)."""
        idx = self._read()
        if idx.chosen is None or idx.chosen == SHIPPED:
            return self._shipped(idx)
        return next((v for v in idx.versions if v.version == idx.chosen), None)

    # ----------------------------------------------------------- changes
    def add(self, data: bytes, record: TurnRecord, m: Manifest, best: bool = False) -> ModelVersion:
        """Keep weights downloaded from the ring, as the turn ``record`` that published
        them (checked against its sha256; its version, site and turn are the labels)."""
        from ..ring.codec import decode_weights, verify_sha256  # torch: only when weights arrive
        from ..training.ring_turn import save_ring_weights_as_model

        verify_sha256(data, record.weights_sha256, f"Weights version {record.version} from site {record.site}")
        try:  # parsed manifests hold only valid names; checked again where a path is built
            check_name("site", record.site, "weights site")
            check_name("sha256", record.weights_sha256, "weights sha256")
        except ValueError as exc:
            raise InputError(f"Weights version {record.version} were not kept: {exc}.") from None
        tensors = decode_weights(data, f"weights version {record.version}")
        val = float(record.metrics["val_loss"]) if "val_loss" in record.metrics else None
        name = f"v{record.version:06d}-{record.site}-{record.weights_sha256[:12]}.safetensors"
        rnd = record.round
        save_ring_weights_as_model(
            tensors,
            m.model_id or "",
            inside(self.folder, name),
            version=f"v{record.version} from site {record.site}, round {rnd + 1}, ring {m.ring_id[:8]}",
            metrics={"val_loss": val} if val is not None else {},
        )
        from ..model.weights import read_meta

        v = ModelVersion(
            record.version,
            record.site,
            rnd,
            record.turn,
            record.weights_sha256,
            _now(),
            name,
            m.model_id or "",
            m.ring_id,
            val,
            best,
            tensors_sha256=read_meta(self.folder / name).sha256,
        )
        with _LOCK:
            idx = self._read()
            if any(x.sha256 == v.sha256 for x in idx.versions):
                return next(x for x in idx.versions if x.sha256 == v.sha256)
            idx.versions.append(v)
            dropped = self._bound(idx)
            self._write(idx)
        for old in dropped:
            with contextlib.suppress(OSError):
                self.path(old).unlink()
        return v

    def _bound(self, idx: StoreIndex) -> list[ModelVersion]:
        """Keep at most ``MAX_VERSIONS``: the oldest go first, never the one in use."""
        dropped = []
        for old in sorted(idx.versions, key=lambda x: x.version):
            if len(idx.versions) <= MAX_VERSIONS:
                break
            if old.version != idx.chosen:
                idx.versions.remove(old)
                dropped.append(old)
        return dropped

    def set_score(self, version: int, score: LocalScore) -> ModelVersion:
        with _LOCK:
            idx = self._read()
            if version == SHIPPED:
                idx.shipped_score = score
                self._write(idx)
                out = self._shipped(idx)
                if out is None:
                    raise InputError("This installation has no default model.")
                return out
            out = None
            for n, v in enumerate(idx.versions):
                if v.version == version:
                    idx.versions[n] = out = replace(v, score=score)
            if out is None:
                raise InputError(f"Model version {version} is not kept on this computer.")
            self._write(idx)
        return out

    def choose(self, version: int | None) -> ModelVersion | None:
        """Use ``version`` from now on (any kept version: rolling back is choosing an older one)."""
        with _LOCK:
            idx = self._read()
            v = None
            if version == SHIPPED:
                v = self._shipped(idx)
                if v is None:
                    raise InputError("This installation has no default model to use.")
            elif version is not None:
                v = next((x for x in idx.versions if x.version == version), None)
                if v is None:
                    raise InputError(f"Model version {version} is not kept on this computer.")
                if not self.path(v).is_file():
                    raise InputError(f"The weights file of model version {version} ({self.path(v)}) is missing.")
            idx.chosen = version
            self._write(idx)
        return v
