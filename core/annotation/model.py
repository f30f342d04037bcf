"""The editable hematoma mask with undo/redo: one undo step per stroke.

Like napari's labels layer, undo lives in the model, not in the widgets: a
stroke (a brush drag, a fill, accepting the prediction...) may touch any
number of slices and is undone as one step. An undo record holds only what
changed: the flat indices of the changed voxels with their old and new
values, never a copy of the volume (ITK-SNAP stores run-length differences
for the same reason). Undo is kept across slice changes and for at least
``max_undo`` strokes.

Listeners (the viewer, the autosave timer) subscribe with a plain callback
and learn which slices changed; this module knows nothing about Qt.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Callable

import numpy as np

MAX_UNDO_DEFAULT = 200
MAX_UNDO_BYTES_DEFAULT = 512 * 1024 * 1024


@dataclass(frozen=True)
class MaskEdit:
    """One undo step: the voxels a stroke changed."""

    label: str  # what the user did, e.g. "brush", "accept prediction"
    indices: np.ndarray  # flat indices into the mask, sorted, unique
    old: np.ndarray  # uint8 values before
    new: np.ndarray  # uint8 values after
    serial: int  # identifies the mask state right after this edit

    @property
    def nbytes(self) -> int:
        return int(self.indices.nbytes + self.old.nbytes + self.new.nbytes)

    @property
    def n_voxels(self) -> int:
        return int(self.indices.size)


@dataclass(frozen=True)
class MaskChange:
    """Sent to listeners after every change of the mask."""

    slices: tuple[int, ...]  # indices along axis 0 whose voxels changed (sorted)
    reason: str  # "edit" (during a stroke), "stroke" (a stroke ended), "undo", "redo"


Listener = Callable[[MaskChange], None]


class MaskModel:
    """A 3-D uint8 mask (axis 0 = slice) with stroke-grouped undo/redo.

    Every change goes through :meth:`set_box`; between :meth:`begin_stroke`
    and :meth:`end_stroke` the changes pile up into one undo step. A change
    made outside a stroke is its own step.
    """

    def __init__(
        self, data: np.ndarray, *, max_undo: int = MAX_UNDO_DEFAULT, max_undo_bytes: int = MAX_UNDO_BYTES_DEFAULT
    ) -> None:
        data = np.asarray(data)
        if data.ndim != 3:
            raise ValueError(f"a mask must be 3-D, got shape {data.shape}")
        if max_undo < 1:
            raise ValueError("max_undo must be at least 1")
        self._data = np.ascontiguousarray(data, dtype=np.uint8).copy()
        self._flat = self._data.reshape(-1)
        self._index_dtype = np.int32 if self._data.size < 2**31 else np.int64
        self.max_undo = max_undo
        self.max_undo_bytes = max_undo_bytes
        self._undo: list[MaskEdit] = []
        self._redo: list[MaskEdit] = []
        self._serials = itertools.count(1)
        self._floor = 0  # state id when the undo stack is empty
        self._saved = 0  # state id last marked as saved
        self._stroke: list[tuple[np.ndarray, np.ndarray]] | None = None
        self._stroke_label = ""
        self._listeners: list[Listener] = []
        self.revision = 0  # bumps on every change, undo and redo included

    # ------------------------------------------------------------ reading
    @property
    def data(self) -> np.ndarray:
        """The mask, read-only: change it through this model only."""
        view = self._data.view()
        view.flags.writeable = False
        return view

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self._data.shape)  # type: ignore[return-value]

    def snapshot(self) -> np.ndarray:
        """An independent copy of the mask (for saving on another thread)."""
        return self._data.copy()

    @property
    def state_id(self) -> int:
        """Identifies the current mask contents among the states undo can reach."""
        return self._undo[-1].serial if self._undo else self._floor

    @property
    def dirty(self) -> bool:
        """True when the mask differs from the state last marked saved."""
        return self.state_id != self._saved or self.in_stroke

    def mark_saved(self, state_id: int | None = None) -> None:
        """Record that ``state_id`` (default: the current state) is on disk."""
        self._saved = self.state_id if state_id is None else state_id

    # ------------------------------------------------------------ listeners
    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def _emit(self, slices: np.ndarray | tuple[int, ...], reason: str) -> None:
        self.revision += 1
        change = MaskChange(tuple(int(s) for s in np.unique(np.asarray(slices, dtype=np.int64))), reason)
        for listener in list(self._listeners):
            listener(change)

    # ------------------------------------------------------------ strokes
    @property
    def in_stroke(self) -> bool:
        return self._stroke is not None

    def begin_stroke(self, label: str) -> None:
        if self._stroke is not None:
            self.end_stroke()
        self._stroke = []
        self._stroke_label = label

    def end_stroke(self) -> MaskEdit | None:
        """Close the stroke as one undo step; None when it changed nothing."""
        if self._stroke is None:
            return None
        parts, self._stroke = self._stroke, None
        if not parts:
            return None
        idx = np.concatenate([p[0] for p in parts])
        old = np.concatenate([p[1] for p in parts])
        # A voxel touched twice keeps the value it had before its first touch.
        idx, first = np.unique(idx, return_index=True)
        old = old[first]
        new = self._flat[idx]
        changed = old != new
        if not changed.any():
            return None
        edit = MaskEdit(self._stroke_label, idx[changed], old[changed], new[changed].copy(), next(self._serials))
        self._push(edit)
        self._emit(self._slices_of(edit.indices), "stroke")
        return edit

    def _push(self, edit: MaskEdit) -> None:
        self._undo.append(edit)
        self._redo.clear()
        total = sum(e.nbytes for e in self._undo)
        while len(self._undo) > self.max_undo or (total > self.max_undo_bytes and len(self._undo) > 1):
            dropped = self._undo.pop(0)
            total -= dropped.nbytes
            self._floor = dropped.serial

    # ------------------------------------------------------------ changing
    def set_box(self, box: tuple[slice, slice, slice], region: np.ndarray, value: int) -> int:
        """Set ``value`` wherever ``region`` (a bool array shaped like ``data[box]``)
        is True. Returns the number of voxels that changed."""
        value = int(value)
        if value not in (0, 1):
            raise ValueError(f"mask values are 0 or 1, got {value}")
        view = self._data[box]
        region = np.asarray(region, dtype=bool)
        if region.shape != view.shape:
            raise ValueError(f"region of shape {region.shape} does not match box {view.shape}")
        local = np.nonzero(region & (view != value))
        if local[0].size == 0:
            return 0
        starts = [s.indices(n)[0] for s, n in zip(box, self._data.shape)]
        coords = tuple(c + s for c, s in zip(local, starts))
        idx = np.ravel_multi_index(coords, self._data.shape).astype(self._index_dtype, copy=False)
        old = self._flat[idx].copy()
        self._flat[idx] = value
        standalone = self._stroke is None
        if standalone:
            self.begin_stroke("edit")
        assert self._stroke is not None
        self._stroke.append((idx, old))
        self._emit(coords[0], "edit")
        if standalone:
            self.end_stroke()
        return int(idx.size)

    def set_slice_region(self, k: int, region: np.ndarray, value: int, offset: tuple[int, int] = (0, 0)) -> int:
        """Set ``value`` inside a 2-D ``region`` of slice ``k`` placed at ``offset`` (row, col)."""
        r0, c0 = offset
        h, w = region.shape
        return self.set_box((slice(k, k + 1), slice(r0, r0 + h), slice(c0, c0 + w)), region[None], value)

    def replace(self, data: np.ndarray, label: str) -> int:
        """Make the mask equal to ``data`` as one undoable step."""
        data = np.asarray(data)
        if data.shape != self._data.shape:
            raise ValueError(f"mask of shape {data.shape} does not fit {self._data.shape}")
        full = tuple(slice(None) for _ in range(3))
        self.begin_stroke(label)
        n = self.set_box(full, data != 0, 1) + self.set_box(full, data == 0, 0)
        self.end_stroke()
        return n

    # ------------------------------------------------------------ undo/redo
    @property
    def can_undo(self) -> bool:
        return bool(self._undo) and self._stroke is None

    @property
    def can_redo(self) -> bool:
        return bool(self._redo) and self._stroke is None

    @property
    def undo_depth(self) -> int:
        return len(self._undo)

    @property
    def undo_label(self) -> str | None:
        return self._undo[-1].label if self._undo else None

    def undo(self) -> bool:
        if self._stroke is not None:
            self.end_stroke()
        if not self._undo:
            return False
        edit = self._undo.pop()
        self._flat[edit.indices] = edit.old
        self._redo.append(edit)
        self._emit(self._slices_of(edit.indices), "undo")
        return True

    def redo(self) -> bool:
        if self._stroke is not None:
            self.end_stroke()
        if not self._redo:
            return False
        edit = self._redo.pop()
        self._flat[edit.indices] = edit.new
        self._undo.append(edit)
        self._emit(self._slices_of(edit.indices), "redo")
        return True

    def _slices_of(self, indices: np.ndarray) -> np.ndarray:
        per_slice = self._data.shape[1] * self._data.shape[2]
        return np.unique(indices // per_slice)
