"""Entry point of the PyInstaller bundle: the ``hemarelay`` command, except that
no arguments opens the desktop application (a launcher double-click)."""

import multiprocessing
import sys

from core.cli import main


def _arguments(argv: list[str]) -> list[str]:
    # core/experiment/msl.py starts its site processes as ``sys.executable -m core ...``;
    # in the bundle sys.executable is this program, so take that form too.
    if argv[:2] == ["-m", "core"]:
        return argv[2:]
    return argv or ["gui"]


if __name__ == "__main__":
    multiprocessing.freeze_support()  # a no-op unless a worker process is spawned
    sys.exit(main(_arguments(sys.argv[1:])))
