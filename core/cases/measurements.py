"""Measurements of one case: ruler, hematoma thickness, midline shift, HU statistics.

The geometry is done on stack positions ``(k, row, col)`` (see
:class:`~core.annotation.stack.AxialStack`) with the stack's mm spacing; the
stored record also holds the points in RAS world millimetres, which do not
depend on how the viewer lays the volume out. Measurements are kept beside
the case's mask in ``measurements_NNN.json`` (one small JSON list, written
atomically) and read back by the viewer and the reports.

How neuroradiologists measure:

- maximal thickness of a (subdural) hematoma: a line drawn across the
  collection, perpendicular to the skull; the thickness is the longest
  stretch of that line inside the mask;
- midline shift: a line along the falx (the ideal midline, from its
  anterior to its posterior attachment) and the perpendicular distance from
  it to the septum pellucidum, in mm (over 5 mm is a surgical indication).
"""

from __future__ import annotations

import enum
import json
import math
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..errors import InputError
from ..io import atomic_write_text
from .case_files import measurements_path

FORMAT_VERSION = 1
Point = tuple[float, float, float]  # stack position (k, row, col), pixel centres are integers


class MeasureKind(enum.Enum):
    RULER = "ruler"
    THICKNESS = "thickness"
    MIDLINE_SHIFT = "midline shift"
    HU_CIRCLE = "HU circle"
    MASK_HU = "mask HU per slice"

    @property
    def points(self) -> int:
        """Points the user places: two ends of a line, or line ends + the septum."""
        return 3 if self is MeasureKind.MIDLINE_SHIFT else 2


@dataclass(frozen=True)
class HUStats:
    n: int
    mean: float
    sd: float
    min: float
    max: float

    def text(self) -> str:
        if self.n == 0:
            return "no voxels"
        return f"mean {self.mean:.1f} HU, SD {self.sd:.1f}, min {self.min:.0f}, max {self.max:.0f} ({self.n} voxels)"


@dataclass(frozen=True)
class SliceHU:
    slice: int
    stats: HUStats


@dataclass(frozen=True)
class Measurement:
    kind: MeasureKind
    plane: str  # "axial", "coronal", "sagittal": where it was drawn
    points: tuple[Point, ...]  # stack positions
    points_mm: tuple[tuple[float, float, float], ...]  # RAS world mm of the same points
    value: float  # mm (ruler, thickness, midline shift), mean HU (circle, mask)
    unit: str
    text: str  # one line a clinician reads
    stats: HUStats | None = None
    per_slice: tuple[SliceHU, ...] = ()
    user: str = ""
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))


# ------------------------------------------------------------------ geometry
def _mm(p: Sequence[float], spacing: Sequence[float]) -> np.ndarray:
    return np.asarray(p, dtype=np.float64) * np.asarray(spacing, dtype=np.float64)


def distance_mm(p0: Point, p1: Point, spacing: Sequence[float]) -> float:
    return float(np.linalg.norm(_mm(p1, spacing) - _mm(p0, spacing)))


def thickness_mm(mask: np.ndarray, p0: Point, p1: Point, spacing: Sequence[float], step_mm: float = 0.05) -> float:
    """Longest stretch of the segment p0-p1 that lies inside ``mask`` (mm).

    The segment is sampled every ``step_mm`` and each sample looks up the voxel
    it falls in; a stretch runs from its first to its last inside sample, plus
    one step (the sampling's own resolution).
    """
    length = distance_mm(p0, p1, spacing)
    n = max(int(math.ceil(length / step_mm)) + 1, 2)
    t = np.linspace(0.0, 1.0, n)
    pts = np.asarray(p0, float)[None] + t[:, None] * (np.asarray(p1, float) - np.asarray(p0, float))[None]
    idx = np.rint(pts).astype(np.int64)
    ok = np.all((idx >= 0) & (idx < np.asarray(mask.shape)[None]), axis=1)
    inside = np.zeros(n, bool)
    inside[ok] = mask[tuple(idx[ok].T)] != 0
    if not inside.any():
        return 0.0
    # runs of True
    edges = np.diff(np.concatenate([[0], inside.view(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    longest = int(np.max(ends - starts))
    return min(longest * length / (n - 1), length)


@dataclass(frozen=True)
class MidlineShift:
    distance_mm: float  # perpendicular distance from the point to the midline
    side: str  # which side of the patient the point lies on: "left", "right" or ""
    foot: Point  # foot of the perpendicular on the midline (stack position)


def midline_shift(a: Point, b: Point, septum: Point, spacing: Sequence[float]) -> MidlineShift:
    """Perpendicular distance (mm) from ``septum`` to the line through ``a`` and ``b``.

    Stack columns run from the patient's right to left, so a foot-to-septum
    vector with a positive column part means a shift towards the patient's left.
    """
    pa, pb, ps = _mm(a, spacing), _mm(b, spacing), _mm(septum, spacing)
    d = pb - pa
    dd = float(d @ d)
    if dd == 0.0:
        raise InputError("The midline needs two different points along the falx.")
    t = float((ps - pa) @ d) / dd
    foot = pa + t * d
    off = ps - foot
    dist = float(np.linalg.norm(off))
    col = off[2]
    side = "" if abs(col) < 1e-9 else ("left" if col > 0 else "right")
    foot_pt = tuple(float(x) for x in foot / np.asarray(spacing, dtype=np.float64))
    return MidlineShift(dist, side, foot_pt)  # type: ignore[arg-type]


def hu_stats(values: np.ndarray) -> HUStats:
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        return HUStats(0, float("nan"), float("nan"), float("nan"), float("nan"))
    return HUStats(
        int(v.size), float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0, float(v.min()), float(v.max())
    )


def disc(
    shape: tuple[int, int], centre: tuple[float, float], radius_mm: float, pixel_mm: tuple[float, float]
) -> np.ndarray:
    """Bool image of the pixels whose centres lie within ``radius_mm`` of ``centre``."""
    rows = (np.arange(shape[0])[:, None] - centre[0]) * pixel_mm[0]
    cols = (np.arange(shape[1])[None, :] - centre[1]) * pixel_mm[1]
    return rows * rows + cols * cols <= radius_mm * radius_mm


def mask_hu_per_slice(hu: np.ndarray, mask: np.ndarray, axis: int = 0) -> tuple[tuple[SliceHU, ...], HUStats]:
    """HU statistics of the mask on each slice along ``axis`` that has mask, and overall."""
    m = np.asarray(mask) != 0
    rows = []
    for k in np.flatnonzero(np.moveaxis(m, axis, 0).any(axis=(1, 2))):
        sl = [slice(None)] * 3
        sl[axis] = int(k)
        rows.append(SliceHU(int(k), hu_stats(hu[tuple(sl)][m[tuple(sl)]])))
    return tuple(rows), hu_stats(hu[m])


# ------------------------------------------------------------------ records
def _round(p: Sequence[float]) -> tuple[float, ...]:
    return tuple(round(float(x), 3) for x in p)


def make_measurement(
    kind: MeasureKind,
    plane: str,
    points: Sequence[Point],
    *,
    spacing: Sequence[float],
    world: Callable[..., tuple[float, float, float]],
    hu: np.ndarray | None = None,
    mask: np.ndarray | None = None,
    image: np.ndarray | None = None,
    image_point: tuple[float, float] | None = None,
    pixel_mm: tuple[float, float] | None = None,
    user: str = "",
) -> Measurement:
    """Measure ``kind`` from the points the user placed.

    For the HU circle, ``points`` are the centre and a point on the rim, and
    ``image``/``image_point``/``pixel_mm`` are the slice shown (HU) and the
    centre in its pixels. ``world`` maps a stack position to RAS mm
    (:meth:`AxialStack.world_mm`).
    """
    pts = tuple(tuple(float(x) for x in p) for p in points)
    if len(pts) != kind.points and kind is not MeasureKind.MASK_HU:
        raise InputError(f"A {kind.value} needs {kind.points} points, got {len(pts)}.")
    mm = tuple(_round(world(*p)) for p in pts)
    if kind is MeasureKind.RULER:
        d = distance_mm(pts[0], pts[1], spacing)
        return Measurement(kind, plane, pts, mm, d, "mm", f"Ruler: {d:.1f} mm", user=user)
    if kind is MeasureKind.THICKNESS:
        if mask is None:
            raise InputError("Thickness needs a mask: draw the hematoma first.")
        d = thickness_mm(mask, pts[0], pts[1], spacing)
        text = (
            f"Max. hematoma thickness along the line: {d:.1f} mm"
            if d > 0
            else "Thickness: the line does not cross the mask (0 mm)"
        )
        return Measurement(kind, plane, pts, mm, d, "mm", text, user=user)
    if kind is MeasureKind.MIDLINE_SHIFT:
        ms = midline_shift(pts[0], pts[1], pts[2], spacing)
        side = f" to the patient's {ms.side}" if ms.side else ""
        return Measurement(
            kind, plane, pts, mm, ms.distance_mm, "mm", f"Midline shift: {ms.distance_mm:.1f} mm{side}", user=user
        )
    if kind is MeasureKind.HU_CIRCLE:
        if image is None or image_point is None or pixel_mm is None:
            raise InputError("The HU circle needs the slice it was drawn on.")
        r = distance_mm(pts[0], pts[1], spacing)
        inside = disc(image.shape, image_point, r, pixel_mm)
        st = hu_stats(image[inside])
        area = st.n * pixel_mm[0] * pixel_mm[1] / 100.0
        return Measurement(
            kind,
            plane,
            pts,
            mm,
            st.mean,
            "HU",
            f"Circle r {r:.1f} mm ({area:.2f} cm²): {st.text()}",
            stats=st,
            user=user,
        )
    if kind is MeasureKind.MASK_HU:
        if hu is None or mask is None:
            raise InputError("Mask HU statistics need the CT and the mask.")
        per_slice, overall = mask_hu_per_slice(hu, mask)
        return Measurement(
            kind,
            plane,
            (),
            (),
            overall.mean,
            "HU",
            f"Mask HU: {overall.text()}",
            stats=overall,
            per_slice=per_slice,
            user=user,
        )
    raise ValueError(kind)


# ------------------------------------------------------------------ files
def _to_json(m: Measurement) -> dict:
    d = asdict(m)
    d["kind"] = m.kind.value
    return d


def _stats(d: dict | None) -> HUStats | None:
    return None if d is None else HUStats(int(d["n"]), *(float(d[k]) for k in ("mean", "sd", "min", "max")))


def _from_json(d: dict) -> Measurement:
    return Measurement(
        kind=MeasureKind(d["kind"]),
        plane=str(d["plane"]),
        points=tuple(tuple(float(x) for x in p) for p in d["points"]),  # type: ignore[misc]
        points_mm=tuple(tuple(float(x) for x in p) for p in d["points_mm"]),  # type: ignore[misc]
        value=float(d["value"]),
        unit=str(d["unit"]),
        text=str(d["text"]),
        stats=_stats(d.get("stats")),
        per_slice=tuple(SliceHU(int(s["slice"]), _stats(s["stats"])) for s in d.get("per_slice", ())),  # type: ignore[arg-type]
        user=str(d.get("user", "")),
        created=str(d.get("created", "")),
    )


def load_measurements(path: str | Path) -> list[Measurement]:
    """The measurements stored at ``path`` (none when the file does not exist)."""
    path = Path(path)
    if not path.exists():
        return []
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        if doc.get("format") != FORMAT_VERSION:
            raise ValueError(f"format {doc.get('format')!r}")
        return [_from_json(d) for d in doc["measurements"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"The measurements file {path.name} cannot be read ({exc}); it was left as it is.") from exc


def save_measurements(path: str | Path, items: Sequence[Measurement], case: str = "") -> Path:
    """Write ``items`` to ``path`` atomically (an empty list removes the file)."""
    path = Path(path)
    if not items:
        path.unlink(missing_ok=True)
        return path
    doc = {"format": FORMAT_VERSION, "case": case, "measurements": [_to_json(m) for m in items]}
    return atomic_write_text(path, json.dumps(doc, indent=1, allow_nan=True) + "\n")


def where(m: Measurement) -> str:
    """Where a measurement was drawn, as the viewer numbers slices: "axial slice 17"; a
    per-slice mask statistic names its slices."""
    if m.per_slice:
        ks = [s.slice + 1 for s in m.per_slice]
        return f"axial slices {min(ks)}-{max(ks)}" if len(ks) > 1 else f"axial slice {ks[0]}"
    if not m.points:
        return m.plane
    from ..annotation.planes import Plane

    try:
        axis = Plane(m.plane).depth_axis
    except ValueError:
        return m.plane
    return f"{m.plane} slice {int(round(m.points[0][axis])) + 1}"


def describe(m: Measurement) -> str:
    """One line per measurement for the panel and the reports: what, where (slice), by whom."""
    return f"{m.text} ({where(m)}{', ' + m.user if m.user else ''})"


def report_lines(items: Sequence[Measurement]) -> list[str]:
    """One line per measurement, for reports."""
    return [describe(m) for m in items]


def case_measurement_lines(mask_path: str | Path) -> list[str]:
    """The report lines of the measurements stored beside ``mask_path`` (none if absent
    or unreadable: a report never fails because of a measurements file)."""
    try:
        return report_lines(load_measurements(measurements_path(mask_path)))
    except InputError as exc:
        return [str(exc)]
