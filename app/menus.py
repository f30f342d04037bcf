"""The reading workstation's commands: viewer keys, View/Measure/Help menus.

Slice keys, zoom and preview keys are QActions bound to the viewer area
(``WidgetWithChildrenShortcut``): they work wherever the focus is among the
three views (and the focus follows the mouse into them), never steal the
arrow keys from a table in a dock, and are listed in the menus with their
keys, so every control can be found there. Tools (pan, measuring) join the
window's exclusive tool group. Help > Keyboard shortcuts lists what is
actually bound (see :mod:`app.shortcuts_dialog`).
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QInputDialog, QMainWindow, QWidget

from core.annotation.planes import Plane
from core.cases.measurements import MeasureKind

from .actions import Actions
from .edit_controller import PAN
from .viewer import Layout, ViewerArea
from .viewer.slice_view import PAGE

ZOOM_STEP = 1.25

MEASURE_KEYS = {
    MeasureKind.RULER: ("R", "Ruler: distance in mm"),
    MeasureKind.THICKNESS: ("K", "Thickness: longest stretch of a drawn line inside the mask"),
    MeasureKind.MIDLINE_SHIFT: ("S", "Midline shift: line along the falx, then click the septum"),
    MeasureKind.HU_CIRCLE: ("C", "HU circle: mean/SD/min/max inside a drawn circle"),
}
LAYOUT_KEYS = {Layout.ONE_LARGE: "Ctrl+1", Layout.GRID: "Ctrl+2", Layout.SINGLE: "Ctrl+3"}
PLANE_KEYS = {Plane.AXIAL: "F2", Plane.CORONAL: "F3", Plane.SAGITTAL: "F4"}


@dataclass
class ViewerActions:
    next_slice: QAction
    previous_slice: QAction
    page_up: QAction
    page_down: QAction
    first_slice: QAction
    last_slice: QAction
    next_bleed: QAction
    previous_bleed: QAction
    zoom_in: QAction
    zoom_out: QAction
    zoom_reset: QAction
    pan: QAction
    layouts: dict[Layout, QAction]
    next_layout: QAction
    main_plane: dict[Plane, QAction]
    interpolate: QAction
    accept_preview: QAction
    discard_preview: QAction
    fill_3d: QAction
    fill_limit: QAction
    undo_click: QAction
    limit_to_brain: QAction
    brush_smaller: QAction
    brush_larger: QAction
    measure: dict[MeasureKind, QAction]
    mask_hu: QAction
    delete_measurement: QAction
    shortcuts: QAction


def _act(
    owner: QWidget,
    text: str,
    keys: str | list[str] | QKeySequence.StandardKey | None = None,
    tip: str = "",
    name: str = "",
    viewer: bool = False,
    checkable: bool = False,
) -> QAction:
    a = QAction(text, owner)
    if isinstance(keys, list):
        a.setShortcuts([QKeySequence(k) for k in keys])
    elif keys:
        a.setShortcut(QKeySequence(keys))
    shown = ", ".join(s.toString(QKeySequence.SequenceFormat.NativeText) for s in a.shortcuts())
    if tip:
        a.setToolTip(f"{tip} ({shown})" if shown else tip)
        a.setStatusTip(a.toolTip())
    a.setObjectName(name or text)
    a.setCheckable(checkable)
    if viewer:
        a.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
    owner.addAction(a)
    return a


def build_viewer_actions(window: QMainWindow, viewer: ViewerArea, actions: Actions) -> ViewerActions:
    v = viewer
    # Undo/redo answer wherever the focus is, even when no window is active after a
    # dialog closed (a window shortcut then stays silent until the image is clicked);
    # a modal dialog still blocks them, and a text field keeps its own Ctrl+Z.
    for act in (actions.undo, actions.redo):
        act.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)
    layouts = {
        lay: _act(
            window, lay.value, LAYOUT_KEYS[lay], f"Layout: {lay.value}", name=f"layout:{lay.name}", checkable=True
        )
        for lay in Layout
    }
    group = QActionGroup(window)
    for a in layouts.values():
        group.addAction(a)
    layouts[Layout.ONE_LARGE].setChecked(True)
    planes = {
        p: _act(
            window,
            f"Main view: {p.value}",
            PLANE_KEYS[p],
            f"Show the {p.value} view large (or maximised)",
            name=f"main:{p.name}",
        )
        for p in Plane
    }
    pan = _act(
        window,
        "Pan mode",
        "H",
        "Left-drag pans the views (middle-drag pans in any mode)",
        name="tool:PAN",
        checkable=True,
    )
    pan.setData(PAN)
    actions.tool_group.addAction(pan)
    measure = {}
    for kind, (key, tip) in MEASURE_KEYS.items():
        m = _act(window, kind.value[0].upper() + kind.value[1:], key, tip, name=f"measure:{kind.name}", checkable=True)
        m.setData(kind)
        actions.tool_group.addAction(m)
        measure[kind] = m
    return ViewerActions(
        next_slice=_act(
            v, "Next slice", ["Up", "Right"], "Next slice of the active view", name="next_slice", viewer=True
        ),
        previous_slice=_act(
            v,
            "Previous slice",
            ["Down", "Left"],
            "Previous slice of the active view",
            name="previous_slice",
            viewer=True,
        ),
        page_up=_act(v, f"{PAGE} slices forward", "PgUp", name="page_up", viewer=True),
        page_down=_act(v, f"{PAGE} slices back", "PgDown", name="page_down", viewer=True),
        first_slice=_act(v, "First slice", "Home", name="first_slice", viewer=True),
        last_slice=_act(v, "Last slice", "End", name="last_slice", viewer=True),
        next_bleed=_act(
            window,
            "Next slice with bleed",
            ["Ctrl+Up", "Ctrl+Right"],
            "Next slice of the active view with mask or prediction",
            name="next_bleed",
        ),
        previous_bleed=_act(
            window,
            "Previous slice with bleed",
            ["Ctrl+Down", "Ctrl+Left"],
            "Previous slice of the active view with mask or prediction",
            name="previous_bleed",
        ),
        zoom_in=_act(window, "Zoom in", ["Ctrl++", "Ctrl+="], "Zoom in (also Ctrl+wheel)", name="zoom_in"),
        zoom_out=_act(window, "Zoom out", "Ctrl+-", "Zoom out (also Ctrl+wheel)", name="zoom_out"),
        zoom_reset=_act(window, "Reset zoom", "Ctrl+0", "Fit the image to each view", name="zoom_reset"),
        pan=pan,
        layouts=layouts,
        next_layout=_act(
            window, "Next layout", "L", "Cycle: one large + two small, 2 x 2, one view", name="next_layout"
        ),
        main_plane=planes,
        interpolate=_act(
            window,
            "Interpolate between slices",
            "I",
            "Fill the empty slices between drawn slices of the active view (preview)",
            name="interpolate",
        ),
        accept_preview=_act(
            v,
            "Accept preview",
            ["Return", "Enter"],
            "Add the previewed fill or interpolation (one undo step)",
            name="accept_preview",
            viewer=True,
        ),
        discard_preview=_act(
            v, "Discard preview", "Esc", "Drop the previewed change", name="discard_preview", viewer=True
        ),
        undo_click=_act(
            v,
            "Take back the last click",
            "Backspace",
            "Click bleed: drop the last click of the preview",
            name="undo_click",
            viewer=True,
        ),
        limit_to_brain=_act(
            window,
            "Keep HU tools inside the brain",
            None,
            "The blood brush, the threshold box and the fills paint inside the brain mask only",
            name="limit_to_brain",
            checkable=True,
        ),
        fill_3d=_act(
            window,
            "3-D fill",
            "Shift+F",
            "Fill tool in 3-D: the next click fills the connected region across slices (again: in the slice)",
            name="fill_3d",
            checkable=True,
        ),
        fill_limit=_act(
            window,
            "Fill size limit…",
            None,
            "A fill larger than this is cut and asks before adding more",
            name="fill_limit",
        ),
        brush_smaller=_act(window, "Smaller brush", "[", "Brush diameter / 1.25", name="brush_smaller"),
        brush_larger=_act(window, "Larger brush", "]", "Brush diameter x 1.25", name="brush_larger"),
        measure=measure,
        mask_hu=_act(
            window,
            "Mask HU statistics per slice",
            "Shift+S",
            "Mean/SD/min/max HU of the mask on each slice, kept with the measurements",
            name="mask_hu",
        ),
        delete_measurement=_act(window, "Delete last measurement", "Shift+Del", name="delete_measurement"),
        shortcuts=_act(
            window,
            "Keyboard shortcuts",
            QKeySequence.StandardKey.HelpContents,
            "Every key and mouse binding",
            name="shortcuts",
        ),
    )


def _fill(menu, items) -> None:
    for act in items:
        menu.addSeparator() if act is None else menu.addAction(act)


def add_menus(
    window: QMainWindow, a: Actions, va: ViewerActions, training: list[QAction], pacs: list[QAction] = ()
) -> None:
    """The menu bar: File, Edit, Tools (the editing tools and their settings), Training (the
    ring dock's actions), View, Measure, Help."""
    bar = window.menuBar()
    _fill(
        bar.addMenu("&File"),
        (
            a.open_folder,
            a.open_file,
            a.open_dicom,
            None,
            *pacs,
            *((None,) if pacs else ()),
            a.save,
            a.close_case,
            None,
            a.preferences,
            None,
            a.quit,
        ),
    )
    _fill(
        bar.addMenu("&Edit"),
        (
            a.undo,
            a.redo,
            None,
            a.accept_all,
            a.islands,
            None,
            va.accept_preview,
            va.discard_preview,
            va.undo_click,
        ),
    )
    _fill(
        bar.addMenu("&Tools"),
        (
            *a.tools.values(),
            None,
            va.brush_smaller,
            va.brush_larger,
            None,
            va.interpolate,
            va.fill_3d,
            va.fill_limit,
            va.limit_to_brain,
        ),
    )
    _fill(bar.addMenu("&Training"), training)
    view = bar.addMenu("&View")
    for act in (va.zoom_in, va.zoom_out, va.zoom_reset, va.pan, None):
        view.addSeparator() if act is None else view.addAction(act)
    lay = view.addMenu("Layout")
    for act in (*va.layouts.values(), va.next_layout, None, *va.main_plane.values()):
        lay.addSeparator() if act is None else lay.addAction(act)
    slices = view.addMenu("Slice")
    for act in (
        va.next_slice,
        va.previous_slice,
        va.page_up,
        va.page_down,
        va.first_slice,
        va.last_slice,
        va.next_bleed,
        va.previous_bleed,
    ):
        slices.addAction(act)
    view.addSeparator()
    for act in (*a.presets, None, a.show_manual, a.show_prediction, a.difference):
        view.addSeparator() if act is None else view.addAction(act)
    measure = bar.addMenu("&Measure")
    for act in (*va.measure.values(), None, va.mask_hu, None, va.delete_measurement):
        measure.addSeparator() if act is None else measure.addAction(act)
    help_menu = bar.addMenu("&Help")
    help_menu.addAction(va.shortcuts)


def connect_viewer_actions(
    va: ViewerActions, viewer: ViewerArea, edit, tools_panel, show_shortcuts, show_mask_hu, parent: QWidget, fill_tool
) -> None:
    va.next_slice.triggered.connect(lambda: viewer.step_slice(1))
    va.previous_slice.triggered.connect(lambda: viewer.step_slice(-1))
    va.page_up.triggered.connect(lambda: viewer.step_slice(PAGE))
    va.page_down.triggered.connect(lambda: viewer.step_slice(-PAGE))
    va.first_slice.triggered.connect(viewer.first_slice)
    va.last_slice.triggered.connect(viewer.last_slice)

    def to_bleed(step: int) -> None:
        if not viewer.step_to_marked(step):
            edit.message.emit(f"No {'later' if step > 0 else 'earlier'} slice with mask or prediction in this view.")

    va.next_bleed.triggered.connect(lambda: to_bleed(1))
    va.previous_bleed.triggered.connect(lambda: to_bleed(-1))
    va.zoom_in.triggered.connect(lambda: viewer.zoom(ZOOM_STEP))
    va.zoom_out.triggered.connect(lambda: viewer.zoom(1 / ZOOM_STEP))
    va.zoom_reset.triggered.connect(viewer.reset_zoom)
    for lay, act in va.layouts.items():
        act.triggered.connect(lambda _c=False, lay=lay: viewer.set_layout(lay))
    va.next_layout.triggered.connect(viewer.next_layout)
    viewer.layoutChanged.connect(lambda lay: va.layouts[lay].setChecked(True))
    for plane, act in va.main_plane.items():
        act.triggered.connect(lambda _c=False, p=plane: viewer.set_main_plane(p))
    va.interpolate.triggered.connect(lambda: edit.interpolate())
    va.accept_preview.triggered.connect(edit.accept_preview)
    va.discard_preview.triggered.connect(edit.discard_preview)
    va.undo_click.triggered.connect(lambda: edit.clicks.undo_click())
    va.fill_3d.toggled.connect(edit.set_fill_3d)
    va.limit_to_brain.setChecked(edit.settings.limit_to_brain)
    va.limit_to_brain.toggled.connect(edit.set_limit_to_brain)

    def fill_3d(on: bool) -> None:  # as listed: Shift+F makes the next click a 3-D fill
        if on:
            fill_tool.trigger()
        edit.message.emit(
            "Fill tool, 3-D: a click fills the connected region across slices (Shift+F again: in the slice)."
            if on
            else "Fill in the slice only (Shift+F: 3-D)."
        )

    va.fill_3d.triggered.connect(fill_3d)

    def ask_limit() -> None:
        ml, ok = QInputDialog.getDouble(
            parent,
            "Fill size limit",
            "A fill larger than this many mL is cut and asks first:",
            edit.fill_limit_ml,
            0.1,
            500.0,
            1,
        )
        if ok:
            edit.set_fill_limit_ml(ml)

    va.fill_limit.triggered.connect(ask_limit)
    va.brush_smaller.triggered.connect(lambda: tools_panel.step_brush(1 / 1.25))
    va.brush_larger.triggered.connect(lambda: tools_panel.step_brush(1.25))
    va.mask_hu.triggered.connect(show_mask_hu)
    va.delete_measurement.triggered.connect(lambda: edit.measure.remove(len(edit.measure.items) - 1))
    va.shortcuts.triggered.connect(show_shortcuts)
