"""``hemarelay gui [FOLDER]``: start the desktop application.

The application lives in ``app`` and needs Qt. ``core`` never imports it: the
application registers its launcher under the ``hemarelay.gui`` entry point
(``pyproject.toml``), and this command loads whatever is registered there, so
an installation without the GUI says so instead of failing on an import.
"""

from __future__ import annotations

import argparse
from importlib.metadata import entry_points
from pathlib import Path

from ..errors import InputError
from . import add_command

ENTRY_POINT_GROUP = "hemarelay.gui"
_GUI_PACKAGES = ("PySide6", "shiboken6", "pyqtgraph")


def register(subparsers) -> None:
    p = add_command(
        subparsers,
        "gui",
        description="Open the Hematoma Relay desktop application, optionally on a site folder "
        "of cases (ct_NNN.nii.gz with mask_NNN.nii.gz / pred_NNN.nii.gz beside them, or a "
        "folder holding train/ test/ normal/ sub-folders).",
    )
    p.add_argument("folder", nargs="?", type=Path, metavar="FOLDER", help="site folder to open as the worklist")
    p.add_argument(
        "--case", type=Path, metavar="CT", help="open this CT (a .nii/.nii.gz file or a DICOM folder) right away"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    launchers = list(entry_points(group=ENTRY_POINT_GROUP))
    if not launchers:
        raise InputError(
            "The desktop application is not part of this installation (no "
            f"'{ENTRY_POINT_GROUP}' entry point); install it with: "
            "pip install 'hematoma-relay[gui]'."
        )
    try:
        launch = launchers[0].load()
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in _GUI_PACKAGES:
            raise
        raise InputError(
            f"The desktop application cannot start: {exc}. Install the GUI "
            "packages with: pip install 'hematoma-relay[gui]'."
        ) from None
    argv: list[str] = []
    if args.folder is not None:
        argv.append(str(args.folder))
    if args.case is not None:
        argv += ["--case", str(args.case)]
    return int(launch(argv))
