"""Run by test_recovery.py in a subprocess: start the app, open a case, paint
one stroke through the core mask model, wait for the autosave, say so, and
keep running until killed (the test kills it with SIGKILL, as a crash would)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np
from PySide6.QtWidgets import QApplication


def main(folder: str, label: str) -> int:
    app = QApplication([])
    from app.settings import Settings
    from app.window import MainWindow

    w = MainWindow(Settings(user="crash-test", autosave_delay_s=0.5))
    w.show()
    w.open_folder(folder)
    w.open_label(label)
    end = time.monotonic() + 60
    while w.controller.session is None and time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)
    s = w.controller.session
    s.model.begin_stroke("brush")
    s.model.set_slice_region(4, np.ones((12, 20), bool), 1, (240, 250))
    s.model.set_slice_region(5, np.ones((12, 20), bool), 1, (240, 250))
    s.model.end_stroke()
    recovery = s.paths.recovery
    while not recovery.exists() and time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)
    print(f"AUTOSAVED {int(np.count_nonzero(s.model.data))}", flush=True)
    return app.exec()  # until killed


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
