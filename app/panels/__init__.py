"""Side panels of the main window: worklist, tools, display, reports, training ring, model versions."""

from .display_panel import DisplayPanel
from .models_panel import ModelsPanel
from .report_panel import ReportPanel
from .ring_panel import RingPanel
from .tools_panel import ToolsPanel
from .worklist_panel import WorklistPanel

__all__ = ["DisplayPanel", "ModelsPanel", "ReportPanel", "RingPanel", "ToolsPanel", "WorklistPanel"]
