"""Start the desktop application: ``hemarelay gui [FOLDER] [--case CT]``."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from .errors import user_message

ICON = Path(__file__).resolve().parents[1] / "resources" / "icons" / "hemarelay.svg"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hemarelay gui", description="Hematoma Relay desktop application")
    p.add_argument("folder", nargs="?", type=Path, help="site folder to open as the worklist")
    p.add_argument("--case", type=Path, metavar="CT", help="CT file or DICOM folder to open right away")
    return p


def _install_excepthook(window) -> None:
    """A bug in a slot must not end the session silently: log it, tell the user."""
    def hook(exc_type, exc, tb):
        if issubclass(exc_type, KeyboardInterrupt):
            sys.__excepthook__(exc_type, exc, tb)
            return
        window.status(user_message(exc.with_traceback(tb)))
    sys.excepthook = hook


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Hematoma Relay")
    if ICON.exists():  # a source checkout; installers place the icon themselves
        app.setWindowIcon(QIcon(str(ICON)))
    from .window import MainWindow  # after QApplication: pyqtgraph needs it for some defaults

    window = MainWindow()
    _install_excepthook(window)
    window.show()
    if args.folder is not None:
        window.open_folder(args.folder)
    if args.case is not None:
        window.controller.open_case(args.case)
    return int(app.exec())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
