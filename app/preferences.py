"""The user's settings while the window runs: the one copy, kept on disk as they change.

What the workstation must remember even after a crash (the last site folder,
the case open) is saved at once; the reader's name is asked once, at the first
case, and never taken from the computer's login.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

from PySide6.QtCore import QObject, Signal

from core.errors import HemaRelayError

from .settings import Settings, save_settings

UNNAMED = "a reader not named"  # until the reader gives a name


class Preferences(QObject):
    message = Signal(str)  # a settings file that cannot be written, for the status bar
    nameGiven = Signal(object)  # Settings with the reader's new name, to be applied

    def __init__(self, settings: Settings, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.settings = settings

    def remember(self, **changes) -> None:
        """Change and save settings at once (a crash must not lose them)."""
        self.settings = replace(self.settings, **changes)
        self.save()

    def save(self) -> None:
        try:
            save_settings(self.settings)
        except HemaRelayError as exc:
            self.message.emit(str(exc))

    def reader(self, ask_name: Callable[[], str]) -> str:
        """The reader's name for records: asked (once) when not given yet."""
        if not self.settings.user:
            name = ask_name().strip()
            if name:
                self.remember(user=name)
                self.nameGiven.emit(self.settings)
        return self.settings.user or UNNAMED
