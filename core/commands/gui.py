"""``hemarelay gui [FOLDER]``: start the desktop application.

The application lives in ``app`` and needs Qt; it is imported only when this
command runs (by name, so ``core`` never imports Qt, not even statically).
"""
from __future__ import annotations

import argparse
import importlib
from pathlib import Path

from ..errors import InputError

_GUI_PACKAGES = ("PySide6", "shiboken6", "pyqtgraph")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "gui", help="open the desktop application (worklist, viewer, mask editing, reports)",
        description="Open the Hematoma Relay desktop application, optionally on a site folder "
        "of cases (ct_NNN.nii.gz with mask_NNN.nii.gz / pred_NNN.nii.gz beside them, or a "
        "folder holding train/ test/ normal/ sub-folders).")
    p.add_argument("folder", nargs="?", type=Path, metavar="FOLDER",
                   help="site folder to open as the worklist")
    p.add_argument("--case", type=Path, metavar="CT",
                   help="open this CT (a .nii/.nii.gz file or a DICOM folder) right away")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        app_main = importlib.import_module("app.main")
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in _GUI_PACKAGES:
            raise
        raise InputError(f"The desktop application cannot start: {exc}. Install the GUI "
                         "packages with: pip install 'hematoma-relay[gui]'.") from None
    argv: list[str] = []
    if args.folder is not None:
        argv.append(str(args.folder))
    if args.case is not None:
        argv += ["--case", str(args.case)]
    return int(app_main.main(argv))
