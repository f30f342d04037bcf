"""Deterministic DICOM UIDs: the same approved mask of the same series gets the
same UIDs, so sending it again replaces (a PACS keeps one object per SOP
Instance UID) instead of adding a duplicate.

A UID is ``2.25.<integer>`` (DICOM PS3.5 B.2: a UUID written as one decimal
integer), the integer being the first 128 bits of a SHA-256 over what the
object is about. Nothing from the patient can be read back from it.
"""

from __future__ import annotations

import hashlib

import numpy as np


def derived_uid(*parts: str) -> str:
    h = hashlib.sha256("\x1f".join(("hemarelay", *parts)).encode("utf-8")).digest()
    return "2.25." + str(int.from_bytes(h[:16], "big"))


def mask_digest(mask: np.ndarray) -> str:
    """SHA-256 of a mask's voxels as 0/1 bytes and its shape (the "approved mask's hash")."""
    m = np.ascontiguousarray(np.asarray(mask) != 0, dtype=np.uint8)
    h = hashlib.sha256(repr(m.shape).encode())
    h.update(m.tobytes())
    return h.hexdigest()


def case_id_for_series(series_uid: str) -> str:
    """The worklist case id of a series retrieved from the PACS: stable (a second
    retrieve finds the same case) and free of patient identifiers."""
    return "pacs-" + hashlib.sha256(series_uid.encode("utf-8")).hexdigest()[:10]
