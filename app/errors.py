"""How errors reach the user: one readable line, never a traceback.

Core code raises :class:`~core.errors.HemaRelayError` with a message written
for a clinician; it is shown as is. Anything else is a bug: it is logged with
its traceback (stderr) and the window shows a short line saying so.
"""

from __future__ import annotations

import html
import logging

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QWidget

from core.errors import CancelledError, HemaRelayError

log = logging.getLogger("hemarelay.app")


def user_message(exc: BaseException, doing: str = "") -> str:
    """The text to show for ``exc``; ``doing`` says what failed ("Saving the mask")."""
    if isinstance(exc, HemaRelayError):
        return str(exc)
    if isinstance(exc, MemoryError):
        return f"{doing or 'This operation'} needs more memory than is free; close other programs and try again."
    log.error(
        "unexpected error%s", f" while {doing.lower()}" if doing else "", exc_info=(type(exc), exc, exc.__traceback__)
    )
    detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
    what = f"{doing} failed" if doing else "Something went wrong"
    return (
        f"{what} because of an internal error ({type(exc).__name__}{': ' + detail if detail else ''}). "
        "Your work is unchanged; details were written to the log."
    )


def is_cancel(exc: BaseException) -> bool:
    return isinstance(exc, CancelledError)


def show_error(parent: QWidget | None, exc: BaseException, doing: str = "") -> str:
    """A modal message box with :func:`user_message`; returns the text shown."""
    text = user_message(exc, doing)
    box = QMessageBox(QMessageBox.Icon.Warning, doing or "Hematoma Relay", text, QMessageBox.StandardButton.Ok, parent)
    box.setObjectName("errorDialog")
    box.setTextFormat(Qt.TextFormat.PlainText)
    box.open()  # window-modal, does not block the event loop
    return text


def warning_box(parent: QWidget | None, text: str, title: str) -> None:
    """A window-modal warning with ``text`` (does not block the event loop)."""
    box = QMessageBox(QMessageBox.Icon.Warning, title, text, QMessageBox.StandardButton.Ok, parent)
    box.setObjectName("errorDialog")
    box.setTextFormat(Qt.TextFormat.PlainText)  # may quote the ring server's text
    box.open()


def ask(parent: QWidget | None, title: str, text: str, buttons: list[str]) -> str:
    """A question with ``buttons`` (the first is the default, "Cancel" rejects); the one chosen."""
    box = QMessageBox(QMessageBox.Icon.Question, title, text, parent=parent)
    box.setTextFormat(Qt.TextFormat.PlainText)  # may quote the ring server's text
    made = {
        box.addButton(
            b,
            QMessageBox.ButtonRole.AcceptRole
            if n == 0
            else QMessageBox.ButtonRole.RejectRole
            if b == "Cancel"
            else QMessageBox.ButtonRole.DestructiveRole,
        ): b
        for n, b in enumerate(buttons)
    }
    box.exec()
    return made.get(box.clickedButton(), buttons[-1])


def plain_tooltip(text: str) -> str:
    """``text`` as a tooltip that shows it as written: Qt renders a tooltip that looks like
    HTML as HTML, so text that may quote a server (a manifest's fields) is escaped and
    wrapped in <qt> (which makes Qt read it as rich text, showing the escaped characters)."""
    return "<qt>" + html.escape(text).replace("\n", "<br>") + "</qt>" if text else ""
