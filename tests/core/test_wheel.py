"""A plain (non-editable) install carries what the package needs at run time.

Builds the wheel as ``pip install .`` would, checks that the shipped files are
in it (presets, icon, desktop entry, every file under resources/, at core/resources/), installs
it into an empty folder and reads the presets from there, with the checkout
off the path.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    # Built from a clean copy of what the wheel is made of: setuptools never empties
    # the checkout's build/ folder, where modules of an older layout would linger.
    src = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for folder in ("core", "app", "resources"):
        shutil.copytree(ROOT / folder, src / folder, ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("wheel")
    r = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(src)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    (whl,) = out.glob("hematoma_relay-*.whl")
    return whl


def test_the_wheel_carries_every_resource(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {
        f"core/resources/{p.relative_to(ROOT / 'resources').as_posix()}"
        for p in (ROOT / "resources").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert {
        "core/resources/presets/cpu-small.toml",
        "core/resources/presets/paper.toml",
        "core/resources/icons/hemarelay.svg",
        "core/resources/hemarelay.desktop",
    } <= shipped
    assert shipped - names == set()
    assert {"core/cli.py", "app/main.py", "core/commands/gui.py", "core/resources/__init__.py"} <= names
    # every module of every package, the remapped core.resources included
    sources = {p.relative_to(ROOT).as_posix() for top in ("core", "app") for p in (ROOT / top).rglob("*.py")}
    sources |= {
        f"core/resources/{p.relative_to(ROOT / 'resources').as_posix()}" for p in (ROOT / "resources").rglob("*.py")
    }
    assert sources == {n for n in names if n.endswith(".py")}, "the wheel's modules are the checkout's, no more"
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "hemarelay = core.cli:main" in text and "[hemarelay.gui]" in text and "app.main:main" in text


def test_an_installed_wheel_finds_its_presets_away_from_the_checkout(wheel, tmp_path):
    target = tmp_path / "site"
    r = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    code = (
        "import core, core.resources as r\n"
        "from core.training.config import load_config\n"
        "print(core.__file__)\n"
        "print(r.resource_path('icons', 'hemarelay.svg').is_file(), r.list_presets())\n"
        "print(load_config('cpu-small').ds)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(target)
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    where, found, ds = r.stdout.strip().splitlines()
    assert Path(where).is_relative_to(target)
    assert found.startswith("True") and "'cpu-small'" in found and "'paper'" in found
    assert int(ds) > 0
