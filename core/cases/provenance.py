"""Which model made a predicted mask: a small JSON file beside ``pred_NNN.nii.gz``.

Light on purpose (no torch): the worklist and reports read it.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path

from ..io.atomic import atomic_write_text
from .case_files import provenance_path


def write_provenance(mask_path: Path, meta) -> Path:
    """Record beside a predicted mask the weights (``WeightsMeta``) that made it."""
    doc = {
        "model_version": meta.version,
        "model_sha256": meta.sha256,
        "architecture": meta.architecture,
        "ds": meta.ds,
        "preset": meta.preset,
        "shipped_default": meta.training.get("shipped_default") is True,
        "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    return atomic_write_text(provenance_path(mask_path), json.dumps(doc, indent=1))


def prediction_label(mask_path: Path) -> str:
    """What a report says it measured: the model version when its provenance is known, with
    the sha256 of the weights tensors (as the model versions table shows it)."""
    try:
        doc = json.loads(provenance_path(mask_path).read_text())
        if doc.get("shipped_default") is True:
            return (
                f"the default model {doc.get('model_version')}, shipped with the program "
                f"(sha256 {str(doc['model_sha256'])[:12]}, {Path(mask_path).name})"
            )
        return (
            f"model {doc.get('model_version') or doc['architecture']} "
            f"(tensors sha256 {str(doc['model_sha256'])[:12]}, {Path(mask_path).name})"
        )
    except (OSError, ValueError, KeyError, TypeError):
        return f"model prediction ({Path(mask_path).name}, model version unknown)"


def prediction_model(mask_path: Path) -> str:
    """The model version that made a predicted mask, with the sha256 of its weights
    tensors (the same hash the model versions table shows); "" when unknown."""
    try:
        doc = json.loads(provenance_path(mask_path).read_text())
        return f"{doc.get('model_version') or doc['architecture']} (tensors sha256 {str(doc['model_sha256'])[:12]})"
    except (OSError, ValueError, KeyError, TypeError):
        return ""


def prediction_provenance(mask_path: Path) -> dict | None:
    """The provenance record beside a predicted mask, or None (absent or unreadable)."""
    try:
        doc = json.loads(provenance_path(mask_path).read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def model_tag(tensors_sha256: str) -> str:
    """How a model is named in the file name of a prediction kept beside the case's own."""
    return str(tensors_sha256)[:12]


def made_by(mask_path: Path) -> str:
    """The tag of the model that made a predicted mask: from its provenance, or for a
    prediction of unknown origin ``unknown-`` and a hash of the file (so it is kept too)."""
    doc = prediction_provenance(mask_path)
    if doc is not None and isinstance(doc.get("model_sha256"), str) and doc["model_sha256"]:
        return model_tag(doc["model_sha256"])
    import hashlib

    return "unknown-" + hashlib.sha256(Path(mask_path).read_bytes()).hexdigest()[:12]


def _copy_prediction(src: Path, dst: Path) -> None:
    """A predicted mask and its provenance, copied atomically (the provenance last)."""
    from ..io.atomic import atomic_write_bytes

    atomic_write_bytes(dst, Path(src).read_bytes())
    src_doc, dst_doc = provenance_path(src), provenance_path(dst)
    if src_doc.exists():
        atomic_write_bytes(dst_doc, src_doc.read_bytes())
    elif dst_doc.exists():
        dst_doc.unlink()


def keep_current_prediction(paths) -> Path | None:
    """Keep the case's prediction beside it under its model's tag (``CaseFiles.kept_prediction``),
    before anything replaces it; returns where it is kept (None: the case has none)."""
    if not paths.prediction.exists():
        return None
    kept = paths.kept_prediction(made_by(paths.prediction))
    if not kept.exists():
        _copy_prediction(paths.prediction, kept)
    return kept


def use_kept_prediction(paths, kept: Path) -> None:
    """Make the kept prediction ``kept`` the case's prediction; the one it replaces is kept first."""
    keep_current_prediction(paths)
    _copy_prediction(kept, paths.prediction)


def weights_tensors_sha256(path: Path) -> str:
    """The tensors sha256 recorded in a weights file's header, read without torch (the
    application asks it on the GUI thread); "" when the header holds none."""
    return str(weights_header_meta(path).get("sha256", ""))


def weights_header_meta(path: Path) -> dict:
    """The program's metadata in a weights file's header (version, architecture, sha256...),
    read without torch; {} when there is none."""
    import struct

    try:
        with open(path, "rb") as fh:
            (n,) = struct.unpack("<Q", fh.read(8))
            if n > 100_000_000:
                return {}
            header = json.loads(fh.read(n))
        meta = json.loads(header.get("__metadata__", {}).get("hemarelay", "{}"))
        return meta if isinstance(meta, dict) else {}
    except (OSError, ValueError, struct.error, AttributeError):
        return {}
