"""The axial slice viewer: windowing, overlays and the slice view widget."""
from .overlays import OverlayStyle
from .slice_view import CursorInfo, SliceView
from .windowing import WindowLevel, Windower

__all__ = ["OverlayStyle", "CursorInfo", "SliceView", "WindowLevel", "Windower"]
