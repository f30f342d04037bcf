"""Measuring on the views: placing points, showing lines, keeping the case's list.

A line (ruler, thickness, the falx line of a midline shift) is drawn by a
drag, or by two clicks; the midline shift then takes one more click on the
septum pellucidum; an HU circle is a drag from its centre. The numbers come
from :mod:`core.cases.measurements`, which also stores the list beside the mask.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from core.annotation import EditSession
from core.annotation.planes import Plane
from core.cases.measurements import (
    MeasureKind,
    Measurement,
    load_measurements,
    make_measurement,
    midline_shift,
    save_measurements,
)
from core.errors import HemaRelayError

from .viewer import Drawing, ViewerArea

CLICK_PX = 1.5  # a press and release closer than this (image pixels) is a click, not a drag

HINTS = {
    MeasureKind.RULER: "Ruler: drag a line (or click both ends).",
    MeasureKind.THICKNESS: "Thickness: drag a line across the hematoma, perpendicular to the skull.",
    MeasureKind.MIDLINE_SHIFT: "Midline shift: drag a line along the falx (anterior to posterior "
    "attachment), then click the septum pellucidum.",
    MeasureKind.HU_CIRCLE: "HU circle: drag from the centre to the rim.",
}


class MeasureController(QObject):
    message = Signal(str)
    changed = Signal(list)  # the case's measurements

    def __init__(self, viewer: ViewerArea, user: str = "", parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.viewer = viewer
        self.user = user
        self.session: EditSession | None = None
        self.items: list[Measurement] = []
        self.kind: MeasureKind | None = None
        self._plane: Plane | None = None
        self._k = 0
        self._points: list[tuple[float, float]] = []  # placed, image pixels of self._plane
        self._press_at: tuple[float, float] | None = None
        self._live: tuple[float, float] | None = None  # where the mouse is while placing

    # ----------------------------------------------------------- case
    def attach(self, session: EditSession) -> None:
        self.session = session
        self.cancel()
        try:
            self.items = load_measurements(self.path)
        except HemaRelayError as exc:
            self.items = []
            self.message.emit(str(exc))
        self._redraw()
        self.changed.emit(list(self.items))

    def detach(self) -> None:
        self.session = None
        self.items = []
        self.cancel()
        self.changed.emit([])

    @property
    def path(self):
        assert self.session is not None
        return self.session.paths.measurements

    def set_kind(self, kind: MeasureKind) -> None:
        self.kind = kind
        self.cancel()
        self.message.emit(HINTS.get(kind, ""))

    def cancel(self) -> None:
        self._points, self._press_at, self._live, self._plane = [], None, None, None
        self._redraw()

    # ----------------------------------------------------------- mouse
    def press(self, plane: Plane, k: int, row: float, col: float) -> None:
        if self.session is None or self.kind is None:
            return
        if self._plane is not None and (plane is not self._plane or k != self._k):
            self.cancel()  # a new view or slice starts over
        self._plane, self._k = plane, k
        self._press_at = (row, col)
        self._points.append((row, col))
        self._live = (row, col)
        self._redraw()

    def move(self, plane: Plane, row: float, col: float) -> None:
        if self._press_at is not None and plane is self._plane:
            self._live = (row, col)
            self._redraw()

    def release(self, plane: Plane) -> None:
        if self._press_at is None or plane is not self._plane or self.kind is None:
            return
        end = self._live or self._press_at
        dragged = max(abs(end[0] - self._press_at[0]), abs(end[1] - self._press_at[1])) > CLICK_PX
        self._press_at = None
        if dragged:
            self._points.append(end)
        if len(self._points) >= self.kind.points:
            self._finish()
        else:
            self._redraw()

    def _finish(self) -> None:
        s, kind, plane = self.session, self.kind, self._plane
        assert s is not None and kind is not None and plane is not None
        geo = self.viewer.views[plane].geo
        assert geo is not None
        pts = self._points[: kind.points]
        voxels = [geo.to_voxel(self._k, r, c) for r, c in pts]
        try:
            m = make_measurement(
                kind,
                plane.value,
                voxels,
                spacing=s.stack.spacing,
                world=s.stack.world_mm,
                hu=s.hu,
                mask=s.model.data,
                image=geo.image(s.hu, self._k),
                image_point=pts[0],
                pixel_mm=geo.pixel_mm,
                user=self.user,
            )
        except HemaRelayError as exc:
            self.message.emit(str(exc))
            self.cancel()
            return
        self.cancel()
        self.add(m)

    # ----------------------------------------------------------- the list
    def add(self, m: Measurement) -> None:
        self.items.append(m)
        self._store()
        self.message.emit(f"{m.text} (kept in {self.path.name})")

    def remove(self, index: int) -> None:
        if 0 <= index < len(self.items):
            del self.items[index]
            self._store()

    def record_mask_hu(self) -> Measurement | None:
        s = self.session
        if s is None:
            return None
        m = make_measurement(
            MeasureKind.MASK_HU,
            "axial",
            (),
            spacing=s.stack.spacing,
            world=s.stack.world_mm,
            hu=s.hu,
            mask=s.model.data,
            user=self.user,
        )
        self.add(m)
        return m

    def _store(self) -> None:
        if self.session is None:
            return
        try:
            save_measurements(self.path, self.items, self.session.case_id)
        except (HemaRelayError, OSError) as exc:
            self.message.emit(f"The measurements could not be saved to {self.path.name}: {exc}")
        self._redraw()
        self.changed.emit(list(self.items))

    # ----------------------------------------------------------- drawing
    def _drawing(
        self, kind: MeasureKind, pts: list[tuple[float, float]], caption: str, pixel_mm: tuple[float, float]
    ) -> Drawing:
        if kind is MeasureKind.HU_CIRCLE and len(pts) >= 2:
            (r0, c0), (r1, c1) = pts[0], pts[1]
            rad = (((r1 - r0) * pixel_mm[0]) ** 2 + ((c1 - c0) * pixel_mm[1]) ** 2) ** 0.5
            return Drawing((), (r0, c0, rad, rad), caption)
        if kind is MeasureKind.MIDLINE_SHIFT and len(pts) >= 3:
            return Drawing((tuple(pts[:2]), (pts[2],)), None, caption)
        return Drawing((tuple(pts),), None, caption)

    def _redraw(self) -> None:
        out: dict[Plane, dict[int, list[Drawing]]] = {p: {} for p in Plane}
        for m in self.items:
            if not m.points:
                continue
            plane = Plane(m.plane)
            geo = self.viewer.views[plane].geo
            if geo is None:
                continue
            img = [geo.from_voxel(p) for p in m.points]
            depth = int(round(img[0][0]))
            pts = [(p[1], p[2]) for p in img]
            if m.kind is MeasureKind.MIDLINE_SHIFT and self.session is not None:
                # the falx line, and the perpendicular from the septum to it
                foot = geo.from_voxel(midline_shift(*m.points[:3], self.session.stack.spacing).foot)
                d = Drawing((tuple(pts[:2]), (pts[2], (foot[1], foot[2]))), None, m.text.split(": ", 1)[-1])
            else:
                d = self._drawing(m.kind, pts, f"{m.value:.1f} {m.unit}", geo.pixel_mm)
            out[plane].setdefault(depth, []).append(d)
        if self._plane is not None and self.kind is not None and self._points:
            geo = self.viewer.views[self._plane].geo
            pts = list(self._points)
            if self._press_at is not None and self._live is not None:
                pts = pts[:-1] + [self._press_at, self._live] if len(pts) else pts
            if geo is not None:
                out[self._plane].setdefault(self._k, []).append(self._drawing(self.kind, pts, "", geo.pixel_mm))
        self.viewer.set_drawings(out)
