"""The viewer: three linked slice views, windowing and overlays."""

from .overlays import OverlayStyle
from .drawings import Drawing
from .slice_view import CursorInfo, SliceView
from .viewer_area import Layout, PreviewBar, ViewerArea
from .windowing import WindowLevel, Windower

__all__ = [
    "OverlayStyle",
    "CursorInfo",
    "Drawing",
    "SliceView",
    "Layout",
    "PreviewBar",
    "ViewerArea",
    "WindowLevel",
    "Windower",
]
