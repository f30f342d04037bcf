"""Three linked views (axial, coronal, sagittal) in ITK-SNAP's layouts.

The views share one cursor, a stack position ``(k, row, col)``: each view
shows the slice through it and draws a crosshair at it, so a click in one
view (crosshair tool) moves the others' slices. Window/level, overlays,
previews and measurements are the same in all three. Layouts: one large view
with two small ones beside it, 2x2 (the fourth cell reads out the cursor), or
one view maximised; the large/maximised view is the chosen main plane.

The area only displays and routes input: editing and measuring tools get the
press/move/release of whichever view was used, with its plane.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QEvent, QRect, Qt, QTimer, Signal
from PySide6.QtWidgets import QApplication, QGridLayout, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from core.annotation import AxialStack
from core.annotation.navigation import next_marked
from core.annotation.planes import Plane
from core.imaging.stored_range import StoredRange, stored_range

from .drawings import Drawing
from .overlays import OverlayStyle
from .slice_view import CursorInfo, SliceView
from .windowing import WindowLevel

if TYPE_CHECKING:  # for annotations only
    from core.annotation.click_segment import Click


class Layout(enum.Enum):
    ONE_LARGE = "One large + two small"
    GRID = "2 x 2"
    SINGLE = "One view maximised"

    def next(self) -> "Layout":
        order = list(Layout)
        return order[(order.index(self) + 1) % len(order)]


class PreviewBar(QWidget):
    """A change waiting to be accepted: what it is, Accept, Discard (and an extra choice)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("previewBar")
        self.setStyleSheet("#previewBar { background: #4a4210; } QLabel { color: #fff6c0; }")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self.text = QLabel("")
        self.text.setWordWrap(True)
        self.accept_button = QPushButton("Accept (Enter)")
        self.accept_button.setObjectName("previewAccept")
        self.extra_button = QPushButton("")
        self.extra_button.setObjectName("previewExtra")
        self.discard_button = QPushButton("Discard (Esc)")
        self.discard_button.setObjectName("previewDiscard")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(6, 3, 6, 3)
        lay.addWidget(self.text, 1)
        for b in (self.accept_button, self.extra_button, self.discard_button):
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            lay.addWidget(b)
        self.hide()


class ViewerArea(QWidget):
    windowChanged = Signal(object)  # WindowLevel
    cursorChanged = Signal(object)  # (k, row, col)
    cursorMoved = Signal(object)  # CursorInfo under the mouse, or None
    toolPressed = Signal(object, int, float, float)  # Plane, slice, image row, col
    toolMoved = Signal(object, float, float)  # Plane, image row, col
    toolReleased = Signal(object)  # Plane
    toolAltPressed = Signal(object, int, float, float)  # a right-click with an editing tool: Plane, slice, row, col
    layoutChanged = Signal(object)  # Layout

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("viewerArea")
        self.views = {p: SliceView(p) for p in Plane}
        self.axial = self.views[Plane.AXIAL]
        self.layout_mode = Layout.ONE_LARGE
        self.main_plane = Plane.AXIAL
        self.active_plane = Plane.AXIAL  # the view keys act on (focus, last used)
        self.cursor: tuple[int, int, int] | None = None
        self.opened_at: tuple[int, int, int] | None = None  # where the open case started
        self.stored: StoredRange | None = None  # the open CT's stored HU range
        self._window_name = ""
        self.readout = QLabel("")
        self.readout.setObjectName("cursorReadout")
        self.readout.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.readout.setStyleSheet("background: #101010; color: #d8d8d8; padding: 8px;")
        self.readout.setWordWrap(True)
        self.notice = QLabel("")
        self.notice.setObjectName("clipNotice")
        self.notice.setWordWrap(True)
        self.notice.setStyleSheet("background: #5a2a10; color: #ffe0c0; padding: 3px 6px;")
        self.notice.hide()
        self.preview_bar = PreviewBar(self)  # floats over the views' top: showing it moves nothing
        self.grid = QGridLayout()
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.grid.setSpacing(3)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(0)
        outer.addWidget(self.notice)
        outer.addLayout(self.grid, 1)
        self.preview_bar.installEventFilter(self)
        for plane, v in self.views.items():
            v.sliceChanged.connect(lambda k, p=plane: self._slice_changed(p, k))
            v.crosshairPicked.connect(lambda r, c, p=plane: self._picked(p, r, c))
            v.windowDragged.connect(self._window_drag)
            v.editPressed.connect(lambda k, r, c, p=plane: self._tool_press(p, k, r, c))
            v.editMoved.connect(lambda r, c, p=plane: self.toolMoved.emit(p, r, c))
            v.editReleased.connect(lambda p=plane: self.toolReleased.emit(p))
            v.editAltPressed.connect(lambda k, r, c, p=plane: self.toolAltPressed.emit(p, k, r, c))
            v.cursorMoved.connect(self._hover)
        QApplication.instance().focusChanged.connect(self._focus_changed)
        self._arrange()

    # ----------------------------------------------------------- layout
    def set_layout(self, layout: Layout, main: Plane | None = None) -> None:
        self.layout_mode = layout
        if main is not None:
            self.main_plane = main
        self._arrange()
        # fit the images to their new view sizes once the layout has settled
        QTimer.singleShot(0, self.reset_zoom)
        self.layoutChanged.emit(layout)

    def next_layout(self) -> None:
        self.set_layout(self.layout_mode.next())

    def set_main_plane(self, plane: Plane) -> None:
        self.set_layout(self.layout_mode, plane)

    def _arrange(self) -> None:
        while self.grid.count():
            self.grid.takeAt(0)
        for r in range(3):
            self.grid.setRowStretch(r, 0)
            self.grid.setColumnStretch(r, 0)
        main = self.views[self.main_plane]
        others = [self.views[p] for p in Plane if p is not self.main_plane]
        if self.layout_mode is Layout.ONE_LARGE:
            self.grid.addWidget(main, 0, 0, 2, 1)
            self.grid.addWidget(others[0], 0, 1)
            self.grid.addWidget(others[1], 1, 1)
            self.grid.setColumnStretch(0, 2)
            self.grid.setColumnStretch(1, 1)
            shown = [main, *others]
        elif self.layout_mode is Layout.GRID:
            order = [main, *others]
            for n, v in enumerate(order):
                self.grid.addWidget(v, n // 2, n % 2)
            self.grid.addWidget(self.readout, 1, 1)
            self.grid.setColumnStretch(0, 1)
            self.grid.setColumnStretch(1, 1)
            shown = order
        else:  # maximised: the whole image area, both rows and both columns
            self.grid.addWidget(main, 0, 0, 2, 2)
            shown = [main]
        for v in self.views.values():
            v.setVisible(v in shown)
        self.readout.setVisible(self.layout_mode is Layout.GRID)
        for r in range(2):
            self.grid.setRowStretch(r, 1)

    # ----------------------------------------------------------- content
    def set_volume(
        self,
        hu: np.ndarray,
        stack: AxialStack,
        manual: np.ndarray | None,
        prediction: np.ndarray | None,
        k: int | None = None,
    ) -> None:
        nk, nr, nc = hu.shape
        self.cursor = None
        self.stored = stored_range(hu)
        start = (nk // 2 if k is None else int(k), nr // 2, nc // 2)
        self.opened_at = start
        # the axial view opens on slice k; the others start through the centre
        for plane, v in self.views.items():
            v.set_volume(hu, stack, manual, prediction, int(start[plane.depth_axis]))
        self.set_cursor(start)
        self._check_window()
        self.axial.view.setFocus()

    def set_prediction(self, prediction: np.ndarray | None) -> None:
        for v in self.views.values():
            v.set_prediction(prediction)

    @property
    def prediction(self) -> np.ndarray | None:
        return self.axial.prediction

    @property
    def hu(self) -> np.ndarray | None:
        return self.axial.hu

    def set_preview(self, preview: np.ndarray | None) -> None:
        for v in self.views.values():
            v.set_preview(preview)

    def set_clicks(self, clicks: list[Click]) -> None:
        """Mark the click tool's clicks in every view."""
        for v in self.views.values():
            v.set_clicks(clicks)

    def clear(self) -> None:
        self.cursor = None
        self.stored = None
        for v in self.views.values():
            v.clear()
        self.readout.setText("")
        self.show_notice("")

    def refresh_overlays(self, slices: tuple[int, ...] | None = None) -> None:
        for v in self.views.values():
            v.refresh_overlays(slices)

    # ----------------------------------------------------------- the linked cursor
    def set_cursor(self, voxel: tuple[int, int, int]) -> None:
        """Move the crosshair to stack position ``voxel``: every view shows the slice
        through it."""
        if self.axial.hu is None:
            return
        shape = self.axial.hu.shape
        voxel = tuple(int(min(max(round(v), 0), n - 1)) for v, n in zip(voxel, shape))  # type: ignore[assignment]
        self.cursor = voxel  # type: ignore[assignment]
        for v in self.views.values():
            assert v.geo is not None
            depth, row, col = v.geo.from_voxel(voxel)
            v.set_slice(int(depth))  # re-enters _slice_changed only when it moved
            v.set_crosshair(row, col)
        self._update_readout()
        self.cursorChanged.emit(self.cursor)

    def _slice_changed(self, plane: Plane, k: int) -> None:
        if self.cursor is None:
            return
        cur = list(self.cursor)
        if cur[plane.depth_axis] == k:
            return
        cur[plane.depth_axis] = k
        self.cursor = (cur[0], cur[1], cur[2])
        for other, v in self.views.items():
            if other is not plane and v.geo is not None:
                _, row, col = v.geo.from_voxel(self.cursor)
                v.set_crosshair(row, col)
        self._update_readout()
        self.cursorChanged.emit(self.cursor)

    def _picked(self, plane: Plane, row: float, col: float) -> None:
        v = self.views[plane]
        self.active_plane = plane
        if v.geo is None:
            return
        self.set_cursor(v.geo.to_voxel(v.k, round(row), round(col)))  # type: ignore[arg-type]

    def _tool_press(self, plane: Plane, k: int, row: float, col: float) -> None:
        self.active_plane = plane
        self.toolPressed.emit(plane, k, row, col)

    def _hover(self, info: CursorInfo | None) -> None:
        self.cursorMoved.emit(info)

    def _update_readout(self) -> None:
        v = self.axial
        if self.cursor is None or v.hu is None or v.stack is None:
            return
        k, r, c = self.cursor
        x, y, z = v.stack.world_mm(k, r, c)
        self.readout.setText(
            f"<b>Crosshair</b><br>voxel (slice {k + 1}, row {r}, column {c})<br>"
            f"RAS ({x:.1f}, {y:.1f}, {z:.1f}) mm<br>{float(v.hu[k, r, c]):.0f} HU<br><br>"
            "Click in a view (crosshair tool) to move it; the other views follow."
        )

    # ----------------------------------------------------------- which view keys act on
    def _focus_changed(self, _old, new) -> None:
        for plane, v in self.views.items():
            if new is v.view:
                self.active_plane = plane

    def active_view(self) -> SliceView:
        return self.views[self.active_plane]

    def step_slice(self, step: int) -> None:
        v = self.active_view()
        v.set_slice(v.k + step)

    def step_to_marked(self, step: int) -> bool:
        """The active view goes to the next (``step`` > 0) or previous slice holding mask or
        prediction; False when there is none that way."""
        v = self.active_view()
        if v.hu is None:
            return False
        k = next_marked([v.manual, v.prediction], v.plane.depth_axis, v.k, step)
        if k is None:
            return False
        v.set_slice(k)
        return True

    def untouched(self) -> bool:
        """The crosshair is still where the case opened (the reader has not moved it)."""
        return self.cursor is not None and self.cursor == self.opened_at

    def go_to_slice(self, k: int) -> None:
        """Every view through axial slice ``k`` (the crosshair keeps its row and column)."""
        if self.cursor is not None:
            self.set_cursor((k, self.cursor[1], self.cursor[2]))

    def first_slice(self) -> None:
        self.active_view().set_slice(0)

    def last_slice(self) -> None:
        v = self.active_view()
        v.set_slice(v.n_slices - 1)

    def zoom(self, factor: float) -> None:
        for v in self.views.values():
            v.zoom(factor)

    def reset_zoom(self) -> None:
        for v in self.views.values():
            v.reset_zoom()

    # ----------------------------------------------------------- display options
    @property
    def window(self) -> WindowLevel:
        return self.axial.window

    def set_window(self, wl: WindowLevel, name: str = "") -> None:
        """Show ``wl`` in every view; ``name`` (a preset's) is used in the clipping notice."""
        self._window_name = name
        for v in self.views.values():
            v.set_window(wl)
        self._check_window()
        self.windowChanged.emit(wl)

    def _check_window(self) -> None:
        """Say so when the CT's stored range is clipped and the window asks for more."""
        wl = self.window
        text = "" if self.stored is None else self.stored.window_notice(self._window_name or "current", wl.low, wl.high)
        self.show_notice(text)

    def _window_drag(self, dx: float, dy: float) -> None:
        self.set_window(self.window.dragged(dx, dy))

    def set_style(self, name: str, style: OverlayStyle) -> None:
        for v in self.views.values():
            v.set_style(name, style)

    def set_difference_mode(self, on: bool) -> None:
        for v in self.views.values():
            v.set_difference_mode(on)

    def set_left_mode(self, mode: str) -> None:
        for v in self.views.values():
            v.vb.left_mode = mode

    def set_brush(self, diameter_mm: float | None) -> None:
        for v in self.views.values():
            v.set_brush(diameter_mm)

    def set_drawings(self, drawings: dict[Plane, dict[int, list[Drawing]]]) -> None:
        for plane, v in self.views.items():
            v.set_drawings(drawings.get(plane, {}))

    def show_notice(self, text: str) -> None:
        self.notice.setText(text)
        self.notice.setVisible(bool(text))
        self._place_preview()

    # ----------------------------------------------------------- the preview bar, floating
    def _place_preview(self) -> None:
        top = self.notice.height() if self.notice.isVisible() else 0
        bar, width = self.preview_bar, self.width()
        lay = bar.layout()
        height = lay.totalHeightForWidth(width) if lay.hasHeightForWidth() else bar.sizeHint().height()
        geometry = QRect(0, top, width, max(height, bar.sizeHint().height()))
        if bar.geometry() != geometry:
            bar.setGeometry(geometry)
        bar.raise_()

    def eventFilter(self, obj, ev) -> bool:  # noqa: N802
        if obj is self.preview_bar and ev.type() in (QEvent.Type.Show, QEvent.Type.LayoutRequest):
            QTimer.singleShot(0, self._place_preview)  # after the bar's own layout settled, never inside it
        return False

    def resizeEvent(self, ev) -> None:  # noqa: N802
        super().resizeEvent(ev)
        self._place_preview()
