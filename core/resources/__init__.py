"""The files shipped with the package: training presets, the icon, the desktop
entry (and the default model, under ``models/``).

They live inside the ``core`` package (``core/resources/``) so that every way
the code runs carries them: a source checkout, ``pip install -e .``, a plain
``pip install .`` or a wheel (``pyproject.toml`` lists them as package data),
and the PyInstaller bundle built by ``packaging/hemarelay.spec``, which copies
them to ``resources/`` inside its data folder (named by ``sys._MEIPASS``).
Never relative to the working directory: the desktop launcher starts the
application from anywhere.
"""

from __future__ import annotations

import sys
from pathlib import Path


def resources_dir() -> Path:
    """The resources folder of this installation."""
    bundle = getattr(sys, "_MEIPASS", None)  # set by the PyInstaller boot loader only
    if bundle:
        return Path(bundle) / "resources"
    return Path(__file__).resolve().parent


def resource_path(*parts: str) -> Path:
    """``resource_path("presets", "paper.toml")``: the path of one resource.
    Callers check that it exists where a missing file is not an error."""
    return resources_dir().joinpath(*parts)


def list_presets() -> list[str]:
    """The names of the training presets shipped (``presets/<name>.toml``)."""
    return sorted(p.stem for p in resource_path("presets").glob("*.toml"))
