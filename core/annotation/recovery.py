"""Crash-safe autosave of unsaved mask edits, and the way back after a crash.

The editor writes the whole current mask to a hidden file beside the case
(``.mask_051.recovery.npz``) a second or two after each stroke. The mask is
bit-packed then compressed (``np.savez_compressed``, no pickle), so a
512 x 512 x 56 mask with a hematoma takes a few kB and is written in tens of
milliseconds, and the write is atomic (temp file + rename): a kill during a
write leaves the previous recovery file intact.

Saving the mask removes the recovery file. When a case is opened and its
recovery file is newer than the saved mask (or there is no saved mask), the
edits were not saved and the user is offered to restore them.
"""

from __future__ import annotations

import datetime as _dt
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..imaging.volume import Volume
from ..io import atomic_path

FORMAT = 1


@dataclass(frozen=True)
class RecoveryFile:
    path: Path
    saved_at: _dt.datetime  # when the edits were autosaved (local time)

    def describe(self) -> str:
        return self.saved_at.strftime("%Y-%m-%d %H:%M:%S")


def write_recovery(path: str | Path, mask: np.ndarray, ct: Volume) -> Path:
    """Atomically write ``mask`` (on ``ct``'s own grid) as the recovery file."""
    path = Path(path)
    mask = np.asarray(mask)
    if tuple(mask.shape) != ct.shape:
        raise InputError(f"{path}: mask of shape {mask.shape} does not fit CT {ct.name}.")
    bits = np.packbits(np.ascontiguousarray(mask != 0).reshape(-1))
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(
                fh,
                format=np.int64(FORMAT),
                shape=np.asarray(mask.shape, dtype=np.int64),
                bits=bits,
                affine=np.asarray(ct.affine, dtype=np.float64),
                ct_name=np.str_(ct.name),
                saved_at=np.str_(_dt.datetime.now().astimezone().isoformat(timespec="seconds")),
            )
    return path


def read_recovery(path: str | Path, ct: Volume) -> np.ndarray:
    """The autosaved mask (uint8 0/1 on ``ct``'s grid); InputError when it does not fit."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            fmt = int(npz["format"])
            shape = tuple(int(s) for s in npz["shape"])
            bits = np.asarray(npz["bits"], dtype=np.uint8)
            affine = np.asarray(npz["affine"], dtype=np.float64)
    except FileNotFoundError:
        raise InputError(f"{path}: recovery file not found.") from None
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as exc:
        raise InputError(
            f"{path}: the recovery file is damaged and cannot be restored ({type(exc).__name__})."
        ) from None
    if fmt != FORMAT:
        raise InputError(f"{path}: recovery file of an unknown format ({fmt}).")
    if shape != ct.shape or affine.shape != (4, 4) or not np.allclose(affine, ct.affine, atol=1e-3):
        raise InputError(
            f"{path}: the autosaved edits belong to a scan of another geometry "
            f"than {ct.name}; they cannot be restored onto it."
        )
    n = int(np.prod(shape))
    if bits.size != (n + 7) // 8:
        raise InputError(f"{path}: the recovery file is damaged (wrong size).")
    return np.unpackbits(bits, count=n).reshape(shape)


def pending_recovery(recovery_path: str | Path, mask_path: str | Path) -> RecoveryFile | None:
    """The recovery file when it holds edits newer than the saved mask, else None."""
    rec, mask = Path(recovery_path), Path(mask_path)
    try:
        rec_stat = rec.stat()
    except OSError:
        return None
    try:
        if mask.stat().st_mtime_ns >= rec_stat.st_mtime_ns:
            return None
    except OSError:
        pass  # no saved mask yet: the recovery file is all there is
    return RecoveryFile(rec, _dt.datetime.fromtimestamp(rec_stat.st_mtime))


def discard_recovery(recovery_path: str | Path) -> None:
    try:
        Path(recovery_path).unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise InputError(f"{recovery_path}: cannot remove the recovery file ({exc.strerror or exc}).") from None
