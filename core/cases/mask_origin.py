"""Provenance that follows the voxels: which model's prediction a manual mask started
from, and how much the reviewer changed it.

When the clinician accepts a prediction (whole, or a part of it), the voxels
accepted and the model that predicted them are recorded; saving the mask writes
them beside it (``mask_051.json``, :attr:`core.cases.case_files.CaseFiles.mask_origin`).
Every report then measures the changes against what was accepted (Dice, voxels
added and removed) and says "model X, corrected by Y", "model X, reviewed by
Y without changes" or "model X, unreviewed"; a mask drawn without a model says
"manual". The DICOM SEG marks the first two kinds SEMIAUTOMATIC and AUTOMATIC.
"""

from __future__ import annotations

import base64
import datetime as _dt
import json
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..io.atomic import atomic_write_text
from .provenance import prediction_provenance, weights_header_meta

FORMAT = 1


@dataclass(frozen=True)
class MaskOrigin:
    """The model a mask started from and the voxels taken from its prediction."""

    model: str  # "default-2026.11.30 (tensors sha256 7da143d401d8)": as reports name models
    model_sha256: str  # of the model's weights tensors ("" when its prediction had no provenance)
    prediction_file: str  # the predicted mask accepted from (file name only)
    accepted: np.ndarray  # bool: the predicted voxels accepted into the mask (layout of the caller)
    edited_by: str = ""  # who saved the mask last (the reader who corrected it)

    def with_accepted(self, accepted: np.ndarray) -> "MaskOrigin":
        return MaskOrigin(self.model, self.model_sha256, self.prediction_file, accepted, self.edited_by)


def origin_of_prediction(pred_path: Path, accepted: np.ndarray) -> MaskOrigin:
    """The origin of voxels ``accepted`` from the prediction file ``pred_path``."""
    doc = prediction_provenance(pred_path) or {}
    return _origin(
        doc.get("model_version"), doc.get("architecture"), doc.get("model_sha256"), Path(pred_path).name, accepted
    )


def origin_of_model(weights_path: Path, drawn: np.ndarray) -> MaskOrigin:
    """The origin of voxels the model in ``weights_path`` drew at a reader's clicks (Click
    bleed): reported as that model's, corrected by the reader, like accepted prediction parts."""
    meta = weights_header_meta(Path(weights_path))
    return _origin(meta.get("version"), meta.get("architecture"), meta.get("sha256"), "click bleed", drawn)


_HASH_NOTE = " (tensors sha256 {})"  # how reports name a model: "default-2026.11.30 (tensors sha256 7da143d401d8)"


def _origin(version, architecture, sha256, source: str, voxels: np.ndarray) -> MaskOrigin:
    sha = str(sha256 or "")
    name = str(version or architecture or "of unknown version")
    model = name + _HASH_NOTE.format(sha[:12]) if sha else name
    return MaskOrigin(model, sha, source, voxels)


def without_hash(text: str) -> str:
    """``text`` with the models' tensors hashes left out (where space is short: the SEG's
    64-character content description; the hash goes with the algorithm's name there)."""
    return re.sub(re.escape(_HASH_NOTE).replace(r"\{\}", "[0-9a-f]+"), "", text)


# ----------------------------------------------------------------- the file beside the mask
def _pack(mask: np.ndarray) -> str:
    return base64.b64encode(zlib.compress(np.packbits(mask.astype(bool).ravel()).tobytes(), 9)).decode("ascii")


def _unpack(text: str, shape: tuple[int, ...]) -> np.ndarray:
    bits = np.frombuffer(zlib.decompress(base64.b64decode(text)), np.uint8)
    n = int(np.prod(shape))
    return np.unpackbits(bits, count=n).astype(bool).reshape(shape)


def write_origin(path: Path, origin: MaskOrigin, corrections: "Corrections | None" = None) -> Path:
    """``origin`` (its accepted voxels on the CT's own grid) as JSON beside the mask."""
    doc = {
        "format": FORMAT,
        "model": origin.model,
        "model_sha256": origin.model_sha256,
        "prediction_file": origin.prediction_file,
        "edited_by": origin.edited_by,
        "saved_at": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "shape": list(origin.accepted.shape),
        "accepted_voxels": _pack(origin.accepted),
    }
    if corrections is not None:
        doc["corrections"] = corrections.to_json()
    return atomic_write_text(path, json.dumps(doc, indent=1) + "\n")


def read_origin(path: Path, shape: tuple[int, ...] | None = None) -> MaskOrigin | None:
    """The origin recorded beside a mask (of ``shape``, the CT's grid, when given); None when
    there is none, or it does not fit that grid (then the mask is reported as manual)."""
    try:
        doc = json.loads(Path(path).read_text())
        recorded = tuple(int(n) for n in doc["shape"])
        if shape is not None and recorded != tuple(shape):
            return None
        accepted = _unpack(doc["accepted_voxels"], recorded)
        return MaskOrigin(
            str(doc["model"]),
            str(doc.get("model_sha256", "")),
            str(doc.get("prediction_file", "")),
            accepted,
            str(doc.get("edited_by", "")),
        )
    except (OSError, ValueError, KeyError, TypeError, zlib.error):
        return None


# ----------------------------------------------------------------- what the reviewer changed
@dataclass(frozen=True)
class Corrections:
    dice: float  # the mask against the accepted prediction
    added: int  # voxels in the mask that the accepted prediction did not have
    removed: int  # accepted voxels no longer in the mask
    voxel_ml: float

    @property
    def corrected(self) -> bool:
        return self.added > 0 or self.removed > 0

    def text(self) -> str:
        return (
            f"Dice {self.dice:.3f} against the accepted prediction; {self.added:,} voxels added "
            f"({self.added * self.voxel_ml:.2f} mL), {self.removed:,} removed ({self.removed * self.voxel_ml:.2f} mL)"
        )

    def to_json(self) -> dict:
        return {"dice": round(self.dice, 4), "voxels_added": self.added, "voxels_removed": self.removed}


def corrections(mask: np.ndarray, accepted: np.ndarray, voxel_ml: float) -> Corrections:
    m, a = np.asarray(mask) != 0, np.asarray(accepted, bool)
    inter = int(np.count_nonzero(m & a))
    nm, na = int(np.count_nonzero(m)), int(np.count_nonzero(a))
    dice = 2.0 * inter / (nm + na) if nm + na else 1.0
    return Corrections(dice, nm - inter, na - inter, voxel_ml)


@dataclass(frozen=True)
class MaskProvenance:
    """What a report says about the mask it measured."""

    source: str  # "manual (mask_051.nii.gz)", "model X, corrected by Y", "model X, unreviewed", ...
    model: str = ""  # the model the mask started from ("" for a manual mask)
    corrections: Corrections | None = None
    automatic: bool = False  # unchanged model output (DICOM SEG: AUTOMATIC)

    @property
    def semiautomatic(self) -> bool:
        """Model output corrected by a reader (DICOM SEG: SEMIAUTOMATIC)."""
        return bool(self.model) and not self.automatic


def mask_provenance(
    origin: MaskOrigin | None, mask: np.ndarray, voxel_ml: float, reviewed_by: str, manual_source: str
) -> MaskProvenance:
    """How to name a mask in a report. ``reviewed_by``: who marked the case reviewed (or
    approved), "" while it is not; ``manual_source``: the name of a mask drawn without a model."""
    if origin is None:
        return MaskProvenance(manual_source)
    corr = corrections(mask, origin.accepted, voxel_ml)
    if corr.corrected:
        who = origin.edited_by or reviewed_by or "a reader not named"
        state = "" if reviewed_by else "; the case is not yet reviewed"
        return MaskProvenance(f"model {origin.model}, corrected by {who} ({corr.text()}{state})", origin.model, corr)
    if reviewed_by:
        return MaskProvenance(
            f"model {origin.model}, reviewed by {reviewed_by} without changes", origin.model, corr, automatic=True
        )
    return MaskProvenance(f"model {origin.model}, unreviewed", origin.model, corr, automatic=True)


def accepted_parts(prediction: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The 3-D parts (26-connected) of ``prediction`` that lie wholly in ``mask``: what an
    "accept" put there (a part the reader also painted over entirely counts too)."""
    from scipy import ndimage

    pred = np.asarray(prediction) != 0
    labels, n = ndimage.label(pred, structure=np.ones((3, 3, 3), bool))
    if n == 0:
        return np.zeros(pred.shape, bool)
    size = np.bincount(labels.ravel(), minlength=n + 1)
    inside = np.bincount(labels.ravel(), weights=(np.asarray(mask) != 0).ravel(), minlength=n + 1)
    whole = (inside == size) & (np.arange(n + 1) > 0)
    return whole[labels]
