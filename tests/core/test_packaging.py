"""The package list in pyproject.toml, and the three ways the code is installed.

The shipped files live in the top-level ``resources/`` folder and ship as the
package ``core.resources`` (``package-dir``). Automatic package discovery would
silently drop that remapped package, so pyproject.toml lists every package by
hand; these tests keep the list equal to the ``__init__.py`` files on disk and
check that the editable install (the one ``scripts/setup.sh`` makes) and the
PyInstaller hook follow the mapping. The wheel is checked in test_wheel.py.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
SETUPTOOLS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def packages_on_disk() -> dict[str, Path]:
    """Every package folder under core/ and app/, and every remapped one, by name."""
    found = {}
    for top in ("core", "app"):
        for init in (ROOT / top).rglob("__init__.py"):
            found[".".join(init.parent.relative_to(ROOT).parts)] = init.parent
    for name, folder in SETUPTOOLS["package-dir"].items():
        assert name not in found, f"{name} is both a folder under {name.split('.')[0]}/ and remapped to {folder}"
        for init in (ROOT / folder).rglob("__init__.py"):
            found[".".join([name, *init.parent.relative_to(ROOT / folder).parts])] = init.parent
    return found


def test_the_package_list_is_the_packages_on_disk():
    listed = SETUPTOOLS["packages"]
    assert len(listed) == len(set(listed)), "a package is listed twice"
    on_disk = packages_on_disk()
    assert sorted(set(on_disk) - set(listed)) == [], "packages on disk that the wheel would leave out"
    assert sorted(set(listed) - set(on_disk)) == [], "listed packages with no __init__.py"
    assert on_disk["core.resources"] == ROOT / "resources"


def test_the_editable_install_maps_core_resources_to_the_top_level_folder(tmp_path):
    # Away from the checkout and with no PYTHONPATH: only the editable install's hook can find it.
    code = "import core, core.resources as r; print(core.__file__); print(r.__file__); print(r.list_presets())"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    core_file, resources_file, presets = r.stdout.strip().splitlines()
    assert Path(core_file) == ROOT / "core" / "__init__.py"
    assert Path(resources_file) == ROOT / "resources" / "__init__.py"
    assert "'default'" in presets and "'paper'" in presets


def test_the_pyinstaller_hook_searches_where_pyproject_maps_the_package():
    hook_file = ROOT / "packaging" / "hooks" / "pre_find_module_path" / "hook-core.resources.py"
    spec = importlib.util.spec_from_file_location("hook_core_resources", hook_file)
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)

    class Api:  # what PyInstaller passes: the folders it would search (core/'s)
        search_dirs = [str(ROOT / "core")]

    api = Api()
    hook.pre_find_module_path(api)
    # PyInstaller then looks for the module "resources" in each folder searched.
    assert [Path(d) / "resources" for d in api.search_dirs] == [ROOT / "resources"]
    assert (ROOT / "resources" / "__init__.py").is_file()
    spec_text = (ROOT / "packaging" / "hemarelay.spec").read_text()
    assert '"core.resources"' in spec_text and 'hookspath=[str(Path(SPECPATH) / "hooks")]' in spec_text


def test_the_default_data_folder_is_beside_the_project(monkeypatch):
    # A module's own path is how it finds the project: moving it to another folder depth must not move the data.
    from core.cases.datasets import DATA_ENV, shared_data_root

    monkeypatch.delenv(DATA_ENV, raising=False)
    assert shared_data_root() == (ROOT.parent / "shared" / "data").resolve()
