"""Every command of the window as a QAction with its keystroke.

Menus, tool buttons and shortcuts share these actions, so a keystroke and a
button always do the same thing and are enabled together.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QWidget

from core.annotation import Tool

from .settings import WindowPreset

TOOL_KEYS = {
    Tool.NAVIGATE: ("N", "Navigate: a left click moves the crosshair, the other views follow"),
    Tool.BRUSH: ("B", "Brush: paint the mask"),
    Tool.ERASER: ("E", "Eraser: remove from the mask"),
    Tool.BLOOD_BRUSH: ("G", "Blood brush: paints only pixels inside the HU range"),
    Tool.FLOOD_FILL: ("F", "Fill: the connected region inside the HU range under the click"),
    Tool.ACCEPT_COMPONENT: ("A", "Accept the predicted part under the click into the mask"),
    Tool.DELETE_COMPONENT: ("X", "Delete the mask part (3-D connected) under the click"),
    Tool.THRESHOLD: ("T", "Threshold box: drag a box; its pixels inside the HU range are painted"),
    Tool.CLICK_BLEED: (
        "Q",
        "Click bleed: click inside a bleed and the model draws it; Shift+click or right-click where it is "
        "not blood; Enter accepts, Esc drops",
    ),
}


@dataclass
class Actions:
    open_folder: QAction
    open_file: QAction
    open_dicom: QAction
    save: QAction
    close_case: QAction
    preferences: QAction
    quit: QAction
    undo: QAction
    redo: QAction
    accept_all: QAction
    islands: QAction
    difference: QAction
    show_manual: QAction
    show_prediction: QAction
    tools: dict[Tool, QAction]
    tool_group: QActionGroup
    presets: list[QAction]


def _action(
    parent: QWidget,
    text: str,
    shortcut: QKeySequence | str | None = None,
    tip: str = "",
    checkable: bool = False,
    name: str = "",
) -> QAction:
    a = QAction(text, parent)
    if shortcut:
        a.setShortcut(QKeySequence(shortcut))
    if tip:
        a.setToolTip(tip)
        a.setStatusTip(tip)
    a.setCheckable(checkable)
    a.setObjectName(name or text)
    parent.addAction(a)  # shortcuts work wherever the focus is in the window
    return a


def build_actions(parent: QWidget, presets: tuple[WindowPreset, ...]) -> Actions:
    redo = _action(parent, "Redo", None, "Redo the last undone stroke (Ctrl+Shift+Z)", name="redo")
    redo.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
    tools, group = {}, QActionGroup(parent)
    group.setExclusive(True)
    for tool, (key, tip) in TOOL_KEYS.items():
        a = _action(parent, tool.value.capitalize(), key, f"{tip} ({key})", checkable=True, name=f"tool:{tool.name}")
        a.setData(tool)
        group.addAction(a)
        tools[tool] = a
    tools[Tool.NAVIGATE].setChecked(True)
    return Actions(
        open_folder=_action(
            parent,
            "Open site folder…",
            QKeySequence.StandardKey.Open,
            "Open a folder of cases as the worklist",
            name="open_folder",
        ),
        open_file=_action(parent, "Open CT file…", None, "Open one CT (.nii/.nii.gz)", name="open_file"),
        open_dicom=_action(
            parent, "Open DICOM folder…", None, "Open one CT series from a DICOM folder", name="open_dicom"
        ),
        save=_action(
            parent, "Save mask", QKeySequence.StandardKey.Save, "Save the mask beside the CT (Ctrl+S)", name="save"
        ),
        close_case=_action(parent, "Close case", None, "Close the open case", name="close_case"),
        preferences=_action(
            parent, "Preferences…", None, "Window presets, blood range, brush, name", name="preferences"
        ),
        quit=_action(parent, "Quit", QKeySequence.StandardKey.Quit, name="quit"),
        undo=_action(parent, "Undo", QKeySequence("Ctrl+Z"), "Undo the last stroke (Ctrl+Z)", name="undo"),
        redo=redo,
        accept_all=_action(
            parent,
            "Accept whole prediction",
            None,
            "Copy every voxel of the model's prediction into the mask",
            name="accept_all",
        ),
        islands=_action(
            parent,
            "Islands…",
            "Shift+I",
            "The mask's separate parts: keep the largest, remove small ones, keep the selected (Shift+I)",
            name="islands",
        ),
        difference=_action(
            parent,
            "Difference view",
            "D",
            "Green: added to the prediction; magenta: removed from it (D)",
            checkable=True,
            name="difference",
        ),
        show_manual=_action(parent, "Show mask", "M", "Show the manual mask (M)", checkable=True, name="show_manual"),
        show_prediction=_action(
            parent, "Show prediction", "P", "Show the model's prediction (P)", checkable=True, name="show_prediction"
        ),
        tools=tools,
        tool_group=group,
        presets=[
            _action(parent, p.label(), p.key, f"Window {p.label()} ({p.key})", name=f"preset:{p.name}") for p in presets
        ],
    )
