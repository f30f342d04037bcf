"""The one place where the UI flags (:mod:`core.cases.ui_flags`) enable actions and buttons.

The window's table (:func:`window_flags`: flag name -> the actions and widgets it
governs) is built once; the window calls :func:`apply_flags` whenever the case
state changes, and nothing else calls ``setEnabled`` on these.
"""

from __future__ import annotations

from typing import Iterable, Union

from PySide6.QtGui import QAction
from PySide6.QtWidgets import QWidget

from core.cases.ui_flags import UIFlags

Bound = Union[QAction, QWidget]
FlagTable = dict[str, tuple[Bound, ...]]


def flag_table(**groups: Iterable[Bound]) -> FlagTable:
    """``flag_table(case_open=[...], ...)``: every key must be a flag of :class:`UIFlags`."""
    known = set(UIFlags.__dataclass_fields__)
    unknown = set(groups) - known
    if unknown:
        raise KeyError(f"not UI flags: {', '.join(sorted(unknown))}")
    return {name: tuple(items) for name, items in groups.items()}


def apply_flags(flags: UIFlags, table: FlagTable) -> None:
    for name, items in table.items():
        on = bool(getattr(flags, name))
        for item in items:
            item.setEnabled(on)


def window_flags(a, va, report_panel) -> FlagTable:
    """The main window's table: which actions (``Actions``, ``ViewerActions``) and report
    buttons each flag enables."""
    from core.annotation import Tool

    accept_part = a.tools[Tool.ACCEPT_COMPONENT]
    return flag_table(
        case_open=(
            a.save,
            a.close_case,
            a.islands,
            va.next_bleed,
            va.previous_bleed,
            *(t for t in a.tools.values() if t is not accept_part),
        ),
        can_undo=(a.undo,),
        can_redo=(a.redo,),
        has_prediction=(a.accept_all, accept_part),
        reports=(report_panel.case_button, report_panel.seg_button, report_panel.compare_button),
    )
