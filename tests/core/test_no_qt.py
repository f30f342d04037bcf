"""core never imports Qt: the import-linter contract, and a live check."""

from __future__ import annotations

import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

from fresh_python import run_fresh

import core

ROOT = Path(__file__).resolve().parents[2]
QT = ("PySide6", "pyqtgraph", "PyQt5", "PyQt6", "qtpy", "superqt", "shiboken6")


def test_import_linter_contract_holds():
    exe = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    r = subprocess.run([exe], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "core never imports Qt or the app KEPT" in r.stdout
    assert "the ring imports neither training nor the site KEPT" in r.stdout


def test_importing_every_core_module_loads_no_qt():
    names = [m.name for m in pkgutil.walk_packages(core.__path__, "core.") if m.name != "core.__main__"]
    names.append("core.resources")  # in resources/, outside core/ (pyproject.toml's package-dir)
    assert len(names) > 10
    code = (
        "import importlib, sys\n"
        f"for n in {names!r}: importlib.import_module(n)\n"
        f"bad = [m for m in sys.modules if m.split('.')[0] in {QT!r}]\n"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    r = run_fresh(code, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
