"""One case's state as every view shows it: status, unsaved edits, the mask a report measures.

The worklist row, the status control, the report panel and the window title
all read :func:`case_state`, so they cannot disagree: the status comes from the
case's status record (the worklist's file), unsaved edits from the open
session when the case is open (else from an autosaved recovery file), and the
measured mask from the session's own label (what a report of it would say).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..annotation.session import EditSession
from ..errors import InputError
from .worklist import CaseStatus, StatusStore, WorklistCase

UNREADABLE = "status unreadable"


@dataclass(frozen=True)
class CaseState:
    label: str
    status: CaseStatus | None  # None: the status file cannot be read
    status_by: str  # who set it ("" for a case nobody touched)
    unsaved: bool
    mask: str  # what a report of the manual mask measures

    @property
    def status_text(self) -> str:
        return UNREADABLE if self.status is None else self.status.value

    def summary(self) -> str:
        by = f" (by {self.status_by})" if self.status_by else ""
        return (
            f"Case {self.label}: {self.status_text}{by}; unsaved edits: "
            f"{'yes' if self.unsaved else 'no'}; mask: {self.mask}"
        )


def case_state(label: str, case: WorklistCase | None, session: EditSession | None) -> CaseState:
    """The state of case ``label``: ``case`` is its worklist entry (None for a case opened on
    its own), ``session`` the open session when this case is the one open."""
    if case is not None:
        record = case.status
    elif session is not None:
        try:
            record = StatusStore(session.paths.folder).get(session.case_id)
        except InputError:
            record = None
    else:
        record = None
    if session is not None:
        unsaved, mask = session.model.dirty, session.shown_mask_label()
    else:
        unsaved = case is not None and case.unsaved is not None
        mask = f"manual ({case.paths.mask.name})" if case is not None and case.has_mask else "no saved mask"
        if unsaved:
            mask = "manual (unsaved edits, autosaved)"
    return CaseState(label, record.status if record else None, record.user if record else "", unsaved, mask)
