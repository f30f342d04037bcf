"""Mouse input on the slice view -> the core editor of the open case.

The tool semantics (what a brush, fill or accept does, one undo step per
stroke) are in :class:`core.annotation.Editor`; this class only forwards the
view's press/drag/release, shows the brush outline and reports messages.
"""
from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from core.annotation import EditSession, Editor, EditorSettings, HURange, Tool
from core.errors import HemaRelayError

from .viewer import SliceView


class EditController(QObject):
    message = Signal(str)
    toolChanged = Signal(object)  # Tool

    def __init__(self, view: SliceView, settings: EditorSettings, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.view = view
        self.settings = settings
        self.tool = Tool.NAVIGATE
        self.editor: Editor | None = None
        view.editPressed.connect(self._press)
        view.editMoved.connect(self._move)
        view.editReleased.connect(self._release)

    def attach(self, session: EditSession) -> None:
        self.editor = Editor(session.model, session.hu, session.stack.pixel_mm,
                             session.prediction, self.settings)

    def detach(self) -> None:
        if self.editor is not None and self.editor.in_stroke:
            self.editor.release()
        self.editor = None

    def set_tool(self, tool: Tool) -> None:
        if self.editor is not None and self.editor.in_stroke:
            self.editor.release()
        self.tool = tool
        self.view.vb.edit_enabled = tool is not Tool.NAVIGATE
        self.view.set_brush(self.settings.brush_mm if tool.drags else None)
        self.toolChanged.emit(tool)

    def set_brush_mm(self, mm: float) -> None:
        self.settings.brush_mm = float(mm)
        if self.tool.drags:
            self.view.set_brush(self.settings.brush_mm)

    def set_hu_range(self, low: float, high: float) -> None:
        try:
            self.settings.hu_range = HURange(low, high)
        except HemaRelayError as exc:
            self.message.emit(str(exc))

    def accept_whole_prediction(self) -> None:
        if self.editor is None:
            return
        out = self.editor.accept_prediction()
        self.message.emit(out.message or f"Accepted the prediction: {out.changed} voxels added.")

    def _press(self, k: int, row: float, col: float) -> None:
        if self.editor is None:
            return
        out = self.editor.press(self.tool, k, (row, col))
        if out.message:
            self.message.emit(out.message)

    def _move(self, row: float, col: float) -> None:
        if self.editor is not None:
            self.editor.drag((row, col))

    def _release(self) -> None:
        if self.editor is None:
            return
        out = self.editor.release()
        if out.message:
            self.message.emit(out.message)
