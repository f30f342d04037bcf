"""Which of the window's commands can be used now, computed from the case state alone.

ITK-SNAP's UI-flag model layer is the model: the flags are computed here, from
the open case (or its absence), and the application binds each flag to its
actions and buttons in one table (:mod:`app.flag_bindings`). No widget decides
for itself whether it is enabled, so a keystroke, a menu entry and a button can
never disagree, and the rule is tested without Qt.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from ..annotation.session import EditSession


@dataclass(frozen=True)
class UIFlags:
    """One flag per group of commands; True: enabled."""

    case_open: bool = False  # save, close, the editing tools
    can_undo: bool = False
    can_redo: bool = False
    has_prediction: bool = False  # accept the whole prediction, accept a predicted part
    reports: bool = False  # report this case, export DICOM SEG, compare masks

    def names(self) -> tuple[str, ...]:
        """The names of the flags that are set (tests, debugging)."""
        return tuple(f.name for f in fields(self) if getattr(self, f.name))


def ui_flags(session: EditSession | None) -> UIFlags:
    """The flags for the window with ``session`` open (None: no case open)."""
    if session is None:
        return UIFlags()
    model = session.model
    return UIFlags(
        case_open=True,
        can_undo=model.can_undo,
        can_redo=model.can_redo,
        has_prediction=session.prediction is not None,
        reports=True,
    )
