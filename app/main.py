"""Start the desktop application: ``hemarelay gui [FOLDER] [--case CT]``."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from core.resources import resource_path

from .errors import user_message
from .first_paint import after_first_paint

ICON = resource_path("icons", "hemarelay.svg")
# Set by packaging/smoke_test.sh: quit by itself once the --case CT is open and
# painted (exit 0), on an error (1) or after this many seconds (3).
SMOKE_TEST_ENV = "HEMARELAY_SMOKE_TEST"
# Set by bench/bench_startup.py to the wall-clock time (time.time()) just before it
# started the process: print when the window and the --case CT were first painted,
# counted from then, and quit.
STARTUP_TIMES_ENV = "HEMARELAY_STARTUP_T0"


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


def _quit_when_shown(app: QApplication, window, wait_for_case: bool, timeout_s: float) -> None:
    def done(code: int, why: str) -> None:
        window.repaint()  # the first paint of the opened case happens here, synchronously
        print(f"hemarelay smoke test: {why}", file=sys.stderr)
        app.exit(code)

    if wait_for_case:
        window.controller.opened.connect(lambda s: done(0, f"case {s.case_id} opened and painted"))
        window.controller.failed.connect(lambda text: done(1, f"opening failed: {text}"))
    else:
        QTimer.singleShot(0, window, lambda: done(0, "window painted"))
    # The window is the timers' context: they die with it, never firing into a later window.
    QTimer.singleShot(int(timeout_s * 1000), window, lambda: done(3, f"nothing happened in {timeout_s:g} s"))


def _report_startup(app: QApplication, window, t0: float, wait_for_case: bool) -> None:
    """Print the window's and the case's first paints, in seconds since ``t0``, then quit."""

    def say(what: str) -> None:
        cpu = time.process_time()
        torch = "torch" in sys.modules
        print(f"startup: {what} {time.time() - t0:.3f} s cpu {cpu:.3f} s torch {torch}", file=sys.stderr, flush=True)

    def case_painted() -> None:
        say("case painted")
        app.exit(0)

    def window_painted() -> None:
        say("window painted")
        if not wait_for_case:
            app.exit(0)

    after_first_paint(window, window_painted)
    if wait_for_case:
        window.controller.opened.connect(lambda _s: after_first_paint(window.view.view.viewport(), case_painted))
        window.controller.failed.connect(lambda text: (say(f"failed: {text}"), app.exit(1)))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Hematoma Relay")
    if ICON.exists():
        app.setWindowIcon(QIcon(str(ICON)))
    from .window import MainWindow  # after QApplication: pyqtgraph needs it for some defaults

    window = MainWindow()
    _install_excepthook(window)
    t0 = os.environ.get(STARTUP_TIMES_ENV)
    if t0:
        _report_startup(app, window, float(t0), args.case is not None)
    window.show()
    smoke = os.environ.get(SMOKE_TEST_ENV)
    if smoke:
        _quit_when_shown(app, window, args.case is not None, float(smoke))
    if args.folder is not None:
        window.open_folder(args.folder)
    if args.case is not None:
        window.controller.open_case(args.case)
    if args.folder is None and args.case is None:
        window.restore_session()  # the last folder, and a case the program stopped in (a crash)
    return int(app.exec())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
