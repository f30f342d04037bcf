"""Which model made a predicted mask: a small JSON file beside ``pred_NNN.nii.gz``.

Light on purpose (no torch): the worklist and reports read it.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path

from .case_files import provenance_path
from ..io.atomic import atomic_write_text


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
