"""Mouse input on the three views -> the core editor, fills, interpolation, measuring.

The tool semantics (what a brush, box or fill touches, one undo step per
stroke) are in :mod:`core.annotation`; this class forwards the views'
press/drag/release with their plane, shows the brush outline and the
threshold box, and holds the one change waiting in preview (a fill or an
interpolation): Enter adds it as one undo step, Esc drops it. Measuring tools
are handed to :class:`~app.measure_controller.MeasureController`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QApplication

from core.annotation import Editor, EditorSettings, EditSession, HURange, Tool, VolumeRegion
from core.annotation.fill import FILL_LIMIT_ML_DEFAULT, FillResult, fill_job, fill_region
from core.annotation.interpolate import interpolate_between_slices
from core.annotation.planes import Plane
from core.annotation.session import brain_job
from core.cases.measurements import MeasureKind
from core.errors import CancelledError, HemaRelayError

from .click_controller import ClickController, ModelPath
from .errors import user_message
from .measure_controller import MeasureController
from .viewer import ViewerArea
from .workers import Job, start_job

PAN = "pan"  # the pan mode's entry in the tool group (a view mode, not an editing tool)

Ask = Callable[[str, str, list[str]], str]


@dataclass(frozen=True)
class Pending:
    """A change shown in preview until accepted or discarded."""

    label: str  # the undo step's name
    region: VolumeRegion
    text: str
    extra: tuple[str, VolumeRegion, str] | None = None  # button text, larger region, question


class EditController(QObject):
    message = Signal(str)
    toolChanged = Signal(object)  # Tool, MeasureKind or PAN
    previewChanged = Signal(bool)  # a change waits in preview

    def __init__(
        self,
        viewer: ViewerArea,
        settings: EditorSettings,
        ask: Ask,
        parent: QObject | None = None,
        user: str = "",
        model_path: ModelPath | None = None,
    ) -> None:
        super().__init__(parent)
        self.viewer = viewer
        self.settings = settings
        self.ask = ask
        self.tool: Tool | MeasureKind | str = Tool.NAVIGATE
        self.editor: Editor | None = None
        self.session: EditSession | None = None
        self.fill_3d = False
        self.fill_limit_ml = FILL_LIMIT_ML_DEFAULT
        self.pending: Pending | None = None
        self._fill_job: Job | None = None
        self._brain_job: Job | None = None
        self._box: tuple[Plane, tuple[float, float]] | None = None  # threshold box being dragged
        self.measure = MeasureController(viewer, user, self)
        self.measure.message.connect(self.message)
        self.clicks = ClickController(model_path or _default_model_path, self)
        self.clicks.message.connect(self.message)
        self.clicks.previewChanged.connect(self._show_click_preview)
        self.clicks.clicksChanged.connect(self.viewer.set_clicks)
        viewer.toolPressed.connect(self._press)
        viewer.toolAltPressed.connect(self._alt_press)
        viewer.toolMoved.connect(self._move)
        viewer.toolReleased.connect(self._release)
        bar = viewer.preview_bar
        bar.accept_button.clicked.connect(self.accept_preview)
        bar.discard_button.clicked.connect(self.discard_preview)
        bar.extra_button.clicked.connect(self._extra)

    # ----------------------------------------------------------- case
    def attach(self, session: EditSession) -> None:
        """Edit ``session``; attaching the open case again (its prediction changed)
        keeps the clicks of a click session in progress."""
        if session is self.session:
            if self.editor is not None and self.editor.in_stroke:
                self.editor.release()
            self._drop_fill_preview()
        else:
            self.discard_preview()
        self.session = session
        self.editor = Editor(
            session.model,
            session.hu,
            session.stack.pixel_mm,
            session.prediction,
            self.settings,
            slice_mm=session.stack.spacing[0],
        )
        self.measure.attach(session)
        self.clicks.attach(session)
        self._find_brain(session)

    def _find_brain(self, session: EditSession) -> None:
        """The brain mask the HU-range tools keep to, on a worker (about a second)."""
        if session.brain is not None:
            self.editor.brain = session.brain  # type: ignore[union-attr]
            return
        if self._brain_job is not None:
            self._brain_job.cancel()
        self._brain_job = start_job(
            "Finding the brain",
            lambda token: brain_job(session, token),
            on_finished=lambda brain, s=session: self._brain_found(s, brain),
            on_error=lambda exc, s=session: self._brain_failed(s, exc),
            parent=self,
        )

    def _brain_found(self, session: EditSession, brain: np.ndarray) -> None:
        self._brain_job = None
        session.brain = brain
        if session is self.session and self.editor is not None:
            self.editor.brain = brain

    def _brain_failed(self, session: EditSession, exc: BaseException) -> None:
        self._brain_job = None
        if session is self.session and not isinstance(exc, CancelledError):
            self.message.emit(
                f"The brain could not be found in this scan ({user_message(exc)}); the blood brush, "
                "threshold box and fills are not limited to it."
            )

    def detach(self) -> None:
        if self._brain_job is not None:
            self._brain_job.cancel()
            self._brain_job = None
        if self.editor is not None and self.editor.in_stroke:
            self.editor.release()
        self.discard_preview()
        self.editor = None
        self.session = None
        self.measure.detach()
        self.clicks.detach()

    # ----------------------------------------------------------- settings
    def set_tool(self, tool: Tool | MeasureKind | str) -> None:
        if self.editor is not None and self.editor.in_stroke:
            self.editor.release()
        self.measure.cancel()
        if tool is not Tool.CLICK_BLEED:
            self.clicks.discard()
        self.tool = tool
        if tool is Tool.NAVIGATE:
            self.viewer.set_left_mode("crosshair")
        elif tool == PAN:
            self.viewer.set_left_mode("pan")
        else:
            self.viewer.set_left_mode("tool")
        drags = isinstance(tool, Tool) and tool.drags
        self.viewer.set_brush(self.settings.brush_mm if drags else None)
        if isinstance(tool, MeasureKind):
            self.measure.set_kind(tool)
        self.toolChanged.emit(tool)

    def set_brush_mm(self, mm: float) -> None:
        self.settings.brush_mm = float(mm)
        if isinstance(self.tool, Tool) and self.tool.drags:
            self.viewer.set_brush(self.settings.brush_mm)

    def set_hu_range(self, low: float, high: float) -> None:
        try:
            self.settings.hu_range = HURange(low, high)
        except HemaRelayError as exc:
            self.message.emit(str(exc))

    def set_limit_to_brain(self, on: bool) -> None:
        self.settings.limit_to_brain = bool(on)
        self.message.emit(
            "The blood brush, threshold box and fills now stay inside the brain."
            if on
            else "The blood brush, threshold box and fills may now paint outside the brain."
        )

    def set_fill_3d(self, on: bool) -> None:
        self.fill_3d = bool(on)

    def set_fill_limit_ml(self, ml: float) -> None:
        self.fill_limit_ml = max(float(ml), 0.01)

    # ----------------------------------------------------------- whole-case commands
    def accept_whole_prediction(self) -> None:
        if self.editor is None:
            return
        out = self.editor.accept_prediction()
        self.message.emit(out.message or f"Accepted the prediction: {out.changed} voxels added.")

    def interpolate(self, plane: Plane | None = None) -> None:
        """Preview the fill between the drawn slices of ``plane`` (default: the active view)."""
        s = self.session
        if s is None:
            return
        plane = plane or self.viewer.active_plane
        result = interpolate_between_slices(s.model.data, plane.depth_axis, s.stack.spacing)
        if result.region is None:
            self.message.emit(
                f"Interpolation: no empty {plane.value} slices lie between two drawn "
                f"ones. Draw the bleed on two {plane.value} slices with a gap between."
            )
            return
        ml = result.region.n_voxels * s.ct.voxel_volume_ml
        self._show_pending(
            Pending(
                "interpolate",
                result.region,
                f"Interpolation between drawn {plane.value} slices: fills {len(result.filled_slices)} "
                f"slice(s), {ml:.2f} mL. Enter adds it as one undo step; Esc discards it.",
            )
        )

    # ----------------------------------------------------------- preview
    def _show_pending(self, pending: Pending | None) -> None:
        self.pending = pending
        bar = self.viewer.preview_bar
        if pending is None:
            self.viewer.set_preview(None)
            bar.hide()
            self.previewChanged.emit(False)
            return
        assert self.session is not None
        vol = np.zeros(self.session.model.shape, np.uint8)
        vol[pending.region.box][pending.region.mask] = 1
        self.viewer.set_preview(vol)
        bar.text.setText(pending.text)
        bar.extra_button.setVisible(pending.extra is not None)
        if pending.extra is not None:
            bar.extra_button.setText(pending.extra[0])
        bar.show()
        self.message.emit(pending.text)
        self.previewChanged.emit(True)

    def accept_preview(self) -> None:
        if self.clicks.active:
            self.clicks.accept()
            return
        p = self.pending
        if p is None or self.session is None:
            return
        self._apply(p.label, p.region)

    def _extra(self) -> None:
        p = self.pending
        if p is None or p.extra is None or self.session is None:
            return
        _, region, question = p.extra
        if self.ask("Fill beyond the limit", question, ["Add all", "Cancel"]) == "Add all":
            self._apply(p.label, region)

    def _apply(self, label: str, region: VolumeRegion) -> None:
        assert self.session is not None
        model = self.session.model
        model.begin_stroke(label)
        n = model.set_box(region.box, region.mask, 1)
        model.end_stroke()
        self._show_pending(None)
        self.message.emit(
            f"{label.capitalize()}: {n} voxels added ({n * self.session.ct.voxel_volume_ml:.2f} mL; one undo step)."
        )

    def discard_preview(self) -> None:
        """Esc: drop the previewed change (and a measurement being placed)."""
        self.measure.cancel()
        if self.clicks.discard():
            self.message.emit("Click bleed: clicks dropped; the mask is as it was.")
        self._drop_fill_preview()

    def _drop_fill_preview(self) -> None:
        if self._fill_job is not None:
            self._fill_job.cancel()
            self._fill_job = None
        if self.pending is not None:
            self._show_pending(None)

    # ----------------------------------------------------------- mouse
    def _press(self, plane: Plane, k: int, row: float, col: float) -> None:
        if self.editor is None:
            return
        if isinstance(self.tool, MeasureKind):
            self.measure.press(plane, k, row, col)
            return
        if not isinstance(self.tool, Tool):
            return
        if self.tool is Tool.CLICK_BLEED:
            self._click(plane, k, row, col, positive=not _shift_held())
            return
        if self.pending is not None:
            self.discard_preview()
        if self.tool is Tool.FLOOD_FILL:
            self._fill(plane, k, row, col)
            return
        out = self.editor.press(self.tool, k, (row, col), plane)
        if out.message:
            self.message.emit(out.message)
        if self.tool is Tool.THRESHOLD:
            self._box = (plane, (row, col))

    def _alt_press(self, plane: Plane, k: int, row: float, col: float) -> None:
        """A right-click in a view: a negative click for the click tool (else nothing)."""
        if self.editor is not None and self.tool is Tool.CLICK_BLEED:
            self._click(plane, k, row, col, positive=False)

    # ----------------------------------------------------------- click bleed
    def _click(self, plane: Plane, k: int, row: float, col: float, positive: bool) -> None:
        assert self.editor is not None and self.session is not None
        geo = self.editor.planes[plane]
        voxel = tuple(int(round(v)) for v in geo.to_voxel(k, round(row), round(col)))
        if not all(0 <= p < n for p, n in zip(voxel, self.session.hu.shape)):
            return
        self.clicks.click(voxel, positive)  # type: ignore[arg-type]

    def _show_click_preview(self, preview: np.ndarray | None) -> None:
        bar = self.viewer.preview_bar
        self.viewer.set_preview(preview)
        if preview is None:
            if self.pending is None:
                bar.hide()
                self.previewChanged.emit(False)
            return
        bar.text.setText("Click bleed: yellow would be added, purple removed. Enter accepts; Esc drops the clicks.")
        bar.extra_button.setVisible(False)
        bar.show()
        self.previewChanged.emit(True)

    def _move(self, plane: Plane, row: float, col: float) -> None:
        if isinstance(self.tool, MeasureKind):
            self.measure.move(plane, row, col)
            return
        if self.editor is not None:
            self.editor.drag((row, col))
            if self.tool is Tool.THRESHOLD and self._box is not None:
                self.viewer.views[plane].show_box(self._box[1], (row, col))

    def _release(self, plane: Plane) -> None:
        if isinstance(self.tool, MeasureKind):
            self.measure.release(plane)
            return
        if self.editor is None:
            return
        self.viewer.views[plane].show_box(None)
        self._box = None
        out = self.editor.release()
        if out.message:
            self.message.emit(out.message)

    # ----------------------------------------------------------- fill
    def _fill(self, plane: Plane, k: int, row: float, col: float) -> None:
        s = self.session
        assert s is not None and self.editor is not None
        geo = self.editor.planes[plane]
        seed = tuple(int(round(v)) for v in geo.to_voxel(k, round(row), round(col)))
        if not all(0 <= p < n for p, n in zip(seed, s.hu.shape)):
            return
        value = float(s.hu[seed])
        hu_range = self.settings.hu_range
        if not hu_range.contains(np.float64(value)):
            self.message.emit(f"Fill: the clicked pixel is {value:g} HU, outside {hu_range}.")
            return
        limit = max(int(self.fill_limit_ml / s.ct.voxel_volume_ml), 1)
        spacing = s.stack.spacing
        brain = self.editor.brain_limit()
        if brain is not None and not brain[seed]:
            self.message.emit("Fill: the click is outside the brain (the fills stay inside it).")
            return
        if not self.fill_3d:
            self._fill_done(fill_region(s.hu, seed, hu_range, spacing, limit, plane=plane, brain=brain), s)
            return
        if self._fill_job is not None:
            self._fill_job.cancel()
        hu = s.hu
        self.message.emit("Fill: finding the connected 3-D region…")
        self._fill_job = start_job(
            "3-D fill",
            lambda token: fill_job(
                hu, seed, hu_range, spacing, limit, three_d=True, plane=plane, token=token, brain=brain
            ),
            on_finished=lambda result, s=s: self._fill_done(result, s),
            on_error=self._fill_failed,
            parent=self,
        )

    def _fill_failed(self, exc: BaseException) -> None:
        self._fill_job = None
        if not isinstance(exc, CancelledError):
            self.message.emit(user_message(exc))

    def _fill_done(self, result: FillResult | None, session: EditSession) -> None:
        self._fill_job = None
        if session is not self.session:
            return  # the case changed meanwhile
        if result is None:
            self.message.emit(f"Fill: the clicked pixel is outside {self.settings.hu_range}.")
            return
        where = "3-D" if self.fill_3d else "in the slice"
        slices = len(np.flatnonzero(result.region.mask.any(axis=(1, 2))))
        if not result.limited:
            self._show_pending(
                Pending(
                    "flood fill",
                    result.region,
                    f"Fill ({where}, {self.settings.hu_range}): {result.ml:.2f} mL on {slices} axial "
                    "slice(s). Enter adds it; Esc discards it.",
                )
            )
            return
        self._show_pending(
            Pending(
                "flood fill",
                result.region,
                f"Fill ({where}) reached its {self.fill_limit_ml:g} mL limit: the connected region "
                f"inside {self.settings.hu_range} is {result.whole_ml:.1f} mL, so it probably leaks "
                f"into neighbouring tissue. Shown: the {result.ml:.2f} mL nearest the click. "
                "Enter adds what is shown; Esc discards it.",
                extra=(
                    f"Add all {result.whole_ml:.1f} mL…",
                    result.whole,
                    f"Add the whole connected region of {result.whole_ml:.1f} mL, more than the "
                    f"{self.fill_limit_ml:g} mL limit? Check the preview in all three views first.",
                ),
            )
        )


def _shift_held() -> bool:
    return bool(QApplication.keyboardModifiers() & Qt.KeyboardModifier.ShiftModifier)


def _default_model_path():
    from core.model.default import default_model_path, has_default_model

    return default_model_path() if has_default_model() else None
