"""Mask editing without Qt: the undoable mask model, the editing tools,
autosave/recovery files and the open-case session the GUI drives."""

from .editor import Editor, EditorSettings, EditOutcome, Tool
from .fill import FillResult, fill_job, fill_region
from .interpolate import Interpolation, interpolate_between_slices
from .model import MAX_UNDO_DEFAULT, MaskChange, MaskEdit, MaskModel
from .planes import Plane, PlaneGeometry
from .recovery import RecoveryFile, discard_recovery, pending_recovery, read_recovery, write_recovery
from .session import EditSession, MaskSnapshot, open_case
from .stack import AxialStack
from .tools import BLOOD_HU_DEFAULT, HURange, SliceRegion, VolumeRegion, capsule, component_at, flood_fill, whole

__all__ = [
    "EditOutcome",
    "Editor",
    "EditorSettings",
    "Tool",
    "FillResult",
    "fill_job",
    "fill_region",
    "Interpolation",
    "interpolate_between_slices",
    "Plane",
    "PlaneGeometry",
    "MAX_UNDO_DEFAULT",
    "MaskChange",
    "MaskEdit",
    "MaskModel",
    "RecoveryFile",
    "discard_recovery",
    "pending_recovery",
    "read_recovery",
    "write_recovery",
    "EditSession",
    "MaskSnapshot",
    "open_case",
    "AxialStack",
    "BLOOD_HU_DEFAULT",
    "HURange",
    "SliceRegion",
    "VolumeRegion",
    "capsule",
    "component_at",
    "flood_fill",
    "whole",
]
