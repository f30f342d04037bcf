"""Where the files under ``resources/`` (presets, icons, desktop entry) live.

One helper for every way the code runs: a source checkout or ``pip install -e .``
(``resources/`` beside the ``core`` package) and the PyInstaller bundle built by
``packaging/hemarelay.spec`` (``resources/`` inside the bundle's data folder,
which PyInstaller names in ``sys._MEIPASS``). Never relative to the working
directory: the desktop launcher starts the application from anywhere.
"""
from __future__ import annotations

import sys
from pathlib import Path


def resources_dir() -> Path:
    """The ``resources`` folder of this installation (it may not exist in a
    plain wheel install, which does not carry it)."""
    bundle = getattr(sys, "_MEIPASS", None)  # set by the PyInstaller boot loader only
    if bundle:
        return Path(bundle) / "resources"
    return Path(__file__).resolve().parents[1] / "resources"


def resource_path(*parts: str) -> Path:
    """``resource_path("presets", "paper.toml")``: the path of one resource.
    Callers check that it exists where a missing file is not an error."""
    return resources_dir().joinpath(*parts)
