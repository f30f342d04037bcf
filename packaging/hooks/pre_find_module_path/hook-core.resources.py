"""PyInstaller hook: ``core.resources`` lives in the top-level ``resources/`` folder.

pyproject.toml maps the package to that folder (``package-dir``); a wheel and
``pip install -e .`` follow the mapping, but PyInstaller's analysis looks for a
submodule only inside its parent package's folder (``core/``), so it would miss
the package. Search the folder that holds the mapped one instead, as read from
pyproject.toml (the one place the mapping is written).
"""

from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[3]  # packaging/hooks/pre_find_module_path/ -> the project


def mapped_folder(package: str) -> Path:
    """The folder pyproject.toml's ``package-dir`` gives ``package``."""
    settings = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    return ROOT / settings["package-dir"][package]


def pre_find_module_path(api):
    # PyInstaller then looks for "resources" in the folder above the mapped one.
    api.search_dirs = [str(mapped_folder("core.resources").parent)]
