"""The viewer: three linked slice views, windowing and overlays."""

from .drawings import Drawing
from .overlays import OverlayStyle
from .slice_view import CursorInfo, SliceView
from .viewer_area import Layout, PreviewBar, ViewerArea
from .windowing import Windower, WindowLevel

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
