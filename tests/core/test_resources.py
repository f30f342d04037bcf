"""core.resources: one way to find the shipped files from source, a wheel and the bundle."""

from __future__ import annotations

import sys
from pathlib import Path

from core import resources
from core.resources import resource_path, resources_dir
from core.training import config

REPO = Path(__file__).resolve().parents[2]


def test_source_layout_finds_the_checkout_resources(monkeypatch):
    monkeypatch.delattr(sys, "_MEIPASS", raising=False)
    assert resources_dir() == REPO / "resources"  # pyproject.toml maps core.resources here
    assert resource_path("presets", "cpu-small.toml").is_file()
    assert resource_path("icons", "hemarelay.svg").is_file()
    assert resource_path("hemarelay.desktop").is_file()


def test_not_relative_to_the_working_directory(monkeypatch, tmp_path):
    monkeypatch.delattr(sys, "_MEIPASS", raising=False)
    monkeypatch.chdir(tmp_path)
    assert resource_path("presets", "paper.toml").is_file()


def test_bundle_layout_uses_meipass(monkeypatch, tmp_path):
    (tmp_path / "resources" / "presets").mkdir(parents=True)
    (tmp_path / "resources" / "presets" / "tiny.toml").write_text("patch_size = 24\n")
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert resources_dir() == tmp_path / "resources"
    assert resource_path("presets", "tiny.toml").read_text() == "patch_size = 24\n"
    assert not resource_path("presets", "cpu-small.toml").exists()  # never falls back to the checkout


def test_presets_are_found_through_the_helper(monkeypatch):
    monkeypatch.delattr(sys, "_MEIPASS", raising=False)
    assert config.PRESETS_DIR == resources.resource_path("presets")
    assert {"cpu-small", "paper"} <= set(config.list_presets())
