"""Editing tools applied to a mask model: what a press, drag and release do.

The GUI turns mouse events into :meth:`Editor.press`, :meth:`Editor.drag`
and :meth:`Editor.release` calls with slice positions; everything else (which
voxels, the HU range, one undo step per stroke) is decided here, without Qt,
so it is tested on plain arrays.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np

from .fill import fill_region
from .model import MaskModel
from .planes import Plane, PlaneGeometry
from .tools import HURange, SliceRegion, capsule, component_at, rectangle, whole


class Tool(enum.Enum):
    NAVIGATE = "navigate"
    BRUSH = "brush"
    ERASER = "eraser"
    BLOOD_BRUSH = "blood brush"
    FLOOD_FILL = "flood fill"
    ACCEPT_COMPONENT = "accept prediction part"
    DELETE_COMPONENT = "delete part"
    THRESHOLD = "threshold box"  # drag a box: paints the pixels inside it within the HU range
    CLICK_BLEED = "click bleed"  # clicks inside (or outside) a bleed; the model draws it (app/click_controller.py)

    @property
    def drags(self) -> bool:
        """Tools that paint along a drag (the others act once on a click)."""
        return self in (Tool.BRUSH, Tool.ERASER, Tool.BLOOD_BRUSH)


@dataclass
class EditorSettings:
    brush_mm: float = 4.0  # brush diameter in mm
    hu_range: HURange = field(default_factory=HURange)
    # The blood brush, the threshold box and the fills paint inside the brain mask only
    # (scalp and muscle share blood's HU range; thin bone lets a brush reach them).
    limit_to_brain: bool = True


@dataclass(frozen=True)
class EditOutcome:
    changed: int  # voxels changed
    message: str = ""  # for the status bar when nothing happened or something notable did


class Editor:
    """Applies tools to ``model`` (stack layout [k, row, col]) on the CT ``hu``."""

    def __init__(
        self,
        model: MaskModel,
        hu: np.ndarray,
        pixel_mm: tuple[float, float],
        prediction: np.ndarray | None = None,
        settings: EditorSettings | None = None,
        slice_mm: float | None = None,
    ) -> None:
        if hu.shape != model.shape:
            raise ValueError(f"CT {hu.shape} and mask {model.shape} differ in shape")
        if prediction is not None and prediction.shape != model.shape:
            raise ValueError(f"prediction {prediction.shape} and mask {model.shape} differ")
        self.model = model
        self.hu = hu
        self.pixel_mm = pixel_mm
        self.prediction = prediction
        self.settings = settings or EditorSettings()
        self.brain: np.ndarray | None = None  # stack-layout bool, once known (see EditSession.brain)
        spacing = (float(slice_mm if slice_mm is not None else pixel_mm[0]), *map(float, pixel_mm))
        self.planes = {p: PlaneGeometry(p, model.shape, spacing) for p in Plane}  # type: ignore[arg-type]
        self._tool: Tool | None = None  # tool of the stroke in progress
        self._geo = self.planes[Plane.AXIAL]  # plane of the stroke in progress
        self._k = 0
        self._start: tuple[float, float] | None = None
        self._last: tuple[float, float] | None = None
        self._changed = 0

    # ----------------------------------------------------------- strokes
    def press(self, tool: Tool, k: int, pos: tuple[float, float], plane: Plane = Plane.AXIAL) -> EditOutcome:
        """Mouse button down at ``pos`` (image row, col; pixel centres are integers) on
        slice ``k`` of ``plane`` (for the axial plane: the stack's own slice, row, col)."""
        if self._tool is not None:
            self.release()
        if tool is Tool.NAVIGATE:
            return EditOutcome(0)
        geo = self.planes[plane]
        if tool.drags or tool is Tool.THRESHOLD:
            self._tool, self._geo, self._k, self._start, self._last, self._changed = (tool, geo, k, pos, pos, 0)
            self.model.begin_stroke(tool.value)
            if tool.drags:
                self._dab(pos, pos)
            return EditOutcome(self._changed)
        seed = (int(round(pos[0])), int(round(pos[1])))
        voxel = tuple(int(round(v)) for v in geo.to_voxel(k, *seed))
        if tool is Tool.FLOOD_FILL:
            return self.fill(voxel[0], (voxel[1], voxel[2]))
        if tool is Tool.ACCEPT_COMPONENT:
            return self.accept_prediction(voxel)  # type: ignore[arg-type]
        if tool is Tool.DELETE_COMPONENT:
            return self.delete_component(voxel)  # type: ignore[arg-type]
        raise ValueError(f"the {tool.value} tool is not applied by the editor")

    def drag(self, pos: tuple[float, float]) -> EditOutcome:
        if self._tool is None or self._last is None:
            return EditOutcome(0)
        if self._tool is Tool.THRESHOLD:
            self._last = pos  # the box is painted on release
            return EditOutcome(0)
        before = self._changed
        self._dab(self._last, pos)
        self._last = pos
        return EditOutcome(self._changed - before)

    def release(self) -> EditOutcome:
        if self._tool is None:
            return EditOutcome(0)
        if self._tool is Tool.THRESHOLD and self._start is not None and self._last is not None:
            self._threshold_box(self._start, self._last)
        tool, changed = self._tool, self._changed
        self._tool, self._last, self._start = None, None, None
        self.model.end_stroke()
        where = " inside the brain" if self.brain_limit() is not None else ""
        if changed == 0 and tool is Tool.BLOOD_BRUSH:
            return EditOutcome(0, f"Blood brush: no pixel under the brush is within {self.settings.hu_range}{where}.")
        if changed == 0 and tool is Tool.THRESHOLD:
            return EditOutcome(
                0, f"Threshold box: no new pixel inside the box is within {self.settings.hu_range}{where}."
            )
        return EditOutcome(changed)

    @property
    def in_stroke(self) -> bool:
        return self._tool is not None

    def _dab(self, p0: tuple[float, float], p1: tuple[float, float]) -> None:
        assert self._tool is not None
        geo = self._geo
        hu = geo.image(self.hu, self._k)
        region = capsule(hu.shape, p0, p1, self.settings.brush_mm / 2.0, geo.pixel_mm)
        if region.mask.size == 0:
            return
        if self._tool is Tool.BLOOD_BRUSH:
            region = SliceRegion(region.offset, region.mask & self._blood_like(hu)[region.box])
        value = 0 if self._tool is Tool.ERASER else 1
        self._paint(region, value)

    def _threshold_box(self, p0: tuple[float, float], p1: tuple[float, float]) -> None:
        hu = self._geo.image(self.hu, self._k)
        region = rectangle(hu.shape, p0, p1)
        if region.mask.size:
            self._paint(region.restrict(self._blood_like(hu)), 1)

    def brain_limit(self) -> np.ndarray | None:
        """The brain mask the HU-range tools keep to, or None (not known yet, or off)."""
        return self.brain if self.settings.limit_to_brain else None

    def _blood_like(self, hu_slice: np.ndarray) -> np.ndarray:
        """Pixels of the stroke's slice the HU-range tools may paint: inside the HU
        range and, when the limit is on and the brain is known, inside the brain."""
        inside = self.settings.hu_range.contains(hu_slice)
        brain = self.brain_limit()
        if brain is not None:
            inside &= self._geo.image(brain, self._k)
        return inside

    def _paint(self, region: SliceRegion, value: int) -> None:
        box, block = self._geo.box(self._k, region.offset, region.mask)
        self._changed += self.model.set_box(box, block, value)

    # ----------------------------------------------------------- clicks
    def fill(self, k: int, seed: tuple[int, int]) -> EditOutcome:
        """The fill in axial slice ``k`` from ``seed`` at once (no preview, no size
        limit), with the application's rule: inside the brain, stopping at the
        bleed's edge (:func:`core.annotation.fill.fill_region`)."""
        hu = self.hu[k]
        result = fill_region(
            self.hu,
            (k, *seed),
            self.settings.hu_range,
            self.planes[Plane.AXIAL].spacing,
            self.hu.size,
            brain=self.brain_limit(),
        )
        if result is None or result.region.empty:
            value = hu[seed] if 0 <= seed[0] < hu.shape[0] and 0 <= seed[1] < hu.shape[1] else None
            where = f"the clicked pixel is {float(value):g} HU, " if value is not None else ""
            inside = " inside the brain" if self.brain_limit() is not None else ""
            return EditOutcome(0, f"Fill: {where}outside {self.settings.hu_range}{inside}.")
        self.model.begin_stroke(Tool.FLOOD_FILL.value)
        n = self.model.set_box(result.region.box, result.region.mask, 1)
        self.model.end_stroke()
        return EditOutcome(n)

    def accept_prediction(self, point: tuple[int, int, int] | None = None) -> EditOutcome:
        """Copy the prediction (or its connected part at ``point``) into the mask."""
        if self.prediction is None:
            return EditOutcome(0, "This case has no model prediction to accept.")
        region = whole(self.prediction) if point is None else component_at(self.prediction, point)
        if region is None:
            msg = (
                "The model prediction is empty."
                if point is None
                else "No predicted hematoma under the cursor: click inside the prediction overlay."
            )
            return EditOutcome(0, msg)
        label = "accept prediction" if point is None else "accept prediction part"
        self.model.begin_stroke(label)
        n = self.model.set_box(region.box, region.mask, 1)
        self.model.end_stroke()
        if n == 0:
            return EditOutcome(0, "The mask already holds that part of the prediction.")
        return EditOutcome(n)

    def delete_component(self, point: tuple[int, int, int]) -> EditOutcome:
        region = component_at(self.model.data, point)
        if region is None:
            return EditOutcome(0, "No mask under the cursor: click inside the manual mask.")
        self.model.begin_stroke(Tool.DELETE_COMPONENT.value)
        n = self.model.set_box(region.box, region.mask, 0)
        self.model.end_stroke()
        return EditOutcome(n)
