"""Crash safety: edits autosaved by a process killed with SIGKILL come back."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np

from gui_helpers import open_case

HELPER = Path(__file__).with_name("paint_then_wait.py")


def _paint_and_kill(site: Path) -> int:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    proc = subprocess.Popen(
        [sys.executable, str(HELPER), str(site), "067"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        line = ""
        for line in proc.stdout:  # blocks until the helper reports the autosave
            if line.startswith("AUTOSAVED"):
                break
        assert line.startswith("AUTOSAVED"), proc.stderr.read()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    return int(line.split()[1])


def test_kill_then_restore_autosaved_edits(qtbot, window, site):
    saved_before = (site / "mask_067.nii.gz").read_bytes()
    n_voxels = _paint_and_kill(site)
    assert (site / ".mask_067.recovery.npz").exists()
    assert (site / "mask_067.nii.gz").read_bytes() == saved_before  # nothing was saved

    w = window
    w.open_folder(site)
    assert w.worklist_panel.model.data(w.worklist_panel.model.index(w.worklist_panel.model.row_of("067"), 5)) == "yes"
    asked = []
    w.controller.ask = lambda title, text, buttons: asked.append((title, buttons)) or "Restore"
    s = open_case(qtbot, w, site)
    assert asked == [("Unsaved edits found", ["Restore", "Discard"])]
    assert int(np.count_nonzero(s.model.data)) == n_voxels
    assert s.model.data[4, 240:252, 250:270].all() and s.model.data[5, 240:252, 250:270].all()
    assert s.model.dirty and w.windowTitle().endswith("*")
    # the restore is one undo step
    s.model.undo()
    assert not s.model.data[4, 240:252, 250:270].all()
    s.model.redo()
    with qtbot.waitSignal(w.controller.saved, timeout=20000):
        w.controller.save()
    assert not (site / ".mask_067.recovery.npz").exists()


def test_discarding_autosaved_edits_removes_them(qtbot, window, site):
    _paint_and_kill(site)
    w = window
    w.controller.ask = lambda *a: "Discard"
    s = open_case(qtbot, w, site)
    assert not s.model.dirty and not (site / ".mask_067.recovery.npz").exists()
    assert not s.model.data[4, 240:252, 250:270].all()


def test_autosave_follows_strokes_and_is_removed_when_undone(qtbot, window, site):
    w = window
    w.controller.set_autosave_delay(0.2)
    s = open_case(qtbot, w, site)
    rec = site / ".mask_067.recovery.npz"
    with qtbot.waitSignal(w.controller.autosaved, timeout=10000):
        s.model.set_slice_region(2, np.ones((4, 4), bool), 1, (10, 10))
    assert rec.exists()
    s.model.undo()  # back to the saved mask: nothing left to recover
    qtbot.waitUntil(lambda: not rec.exists(), timeout=10000)
