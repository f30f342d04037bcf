"""Side panels of the main window: worklist, tools, display, reports."""
from .display_panel import DisplayPanel
from .report_panel import ReportPanel
from .tools_panel import ToolsPanel
from .worklist_panel import WorklistPanel

__all__ = ["DisplayPanel", "ReportPanel", "ToolsPanel", "WorklistPanel"]
