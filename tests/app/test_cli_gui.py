"""``hemarelay gui``: argument forwarding, and a start in a real process (smoke test)."""

from __future__ import annotations

import os
import subprocess
import sys
import types
from pathlib import Path

from core.cli import main as cli_main

ROOT = Path(__file__).resolve().parents[2]


def test_gui_command_forwards_folder_and_case(monkeypatch, tmp_path):
    got = {}
    fake = types.ModuleType("app.main")
    fake.main = lambda argv: got.setdefault("argv", argv) and 0
    monkeypatch.setitem(sys.modules, "app.main", fake)  # what the entry point app.main:main loads
    assert cli_main(["gui", str(tmp_path), "--case", str(tmp_path / "ct_1.nii.gz")]) == 0
    assert got["argv"] == [str(tmp_path), "--case", str(tmp_path / "ct_1.nii.gz")]


def test_gui_opens_and_paints_the_case_in_a_real_process(site, tmp_path):
    """The installed ``hemarelay gui`` entry point, in its own process: the window
    opens the folder and the case and paints it (the smoke-test mode quits with
    status 0 once the case is painted, 1 if opening failed, 3 if nothing happened)."""
    env = dict(
        os.environ,
        QT_QPA_PLATFORM="offscreen",
        HEMARELAY_CONFIG_DIR=str(tmp_path / "cfg"),
        PYTHONPATH=str(ROOT),
        HEMARELAY_SMOKE_TEST="60",
    )
    r = subprocess.run(
        [sys.executable, "-m", "core", "gui", str(site), "--case", str(site / "ct_067.nii.gz")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert "case 067 opened and painted" in r.stderr
    assert "Traceback" not in r.stderr
