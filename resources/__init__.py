"""The files shipped with the package: training presets, the icon, the desktop
entry (and the default model, under ``models/``).

They live in the top-level ``resources/`` folder and are the package
``core.resources`` wherever the code runs: ``pyproject.toml`` maps the package
to the folder (``package-dir``), so a wheel or a plain ``pip install .`` puts
them at ``core/resources/`` and ``pip install -e .`` finds them here through
its import hook; the PyInstaller bundle built by ``packaging/hemarelay.spec``
copies them to ``resources/`` inside its data folder (named by
``sys._MEIPASS``). Never relative to the working directory: the desktop
launcher starts the application from anywhere.
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
