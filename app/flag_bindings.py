"""The one place where the UI flags (:mod:`core.ui_flags`) enable actions and buttons.

The window builds the table once (flag name -> the actions and widgets it
governs) and calls :func:`apply_flags` whenever the case state changes; nothing
else calls ``setEnabled`` on these.
"""

from __future__ import annotations

from typing import Iterable, Union

from PySide6.QtGui import QAction
from PySide6.QtWidgets import QWidget

from core.ui_flags import UIFlags

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
