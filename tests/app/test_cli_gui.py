"""``hemarelay gui``: argument forwarding, and a start in a real process (smoke test)."""
from __future__ import annotations

import os
import subprocess
import sys
import time
import types
from pathlib import Path

from core.cli import main as cli_main

ROOT = Path(__file__).resolve().parents[2]


def test_gui_command_forwards_folder_and_case(monkeypatch, tmp_path):
    got = {}
    fake = types.ModuleType("app.main")
    fake.main = lambda argv: got.setdefault("argv", argv) and 0
    monkeypatch.setitem(sys.modules, "app.main", fake)  # what importlib.import_module returns
    assert cli_main(["gui", str(tmp_path), "--case", str(tmp_path / "ct_1.nii.gz")]) == 0
    assert got["argv"] == [str(tmp_path), "--case", str(tmp_path / "ct_1.nii.gz")]


def test_gui_starts_on_a_site_folder_and_keeps_running(site, tmp_path):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", HEMARELAY_CONFIG_DIR=str(tmp_path / "cfg"),
               PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "core", "gui", str(site), "--case",
                             str(site / "ct_067.nii.gz")], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(6)
        assert proc.poll() is None, proc.communicate()[1]
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert "Traceback" not in err
