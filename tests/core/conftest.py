"""Fixtures of the ring tests: toy sites (synthetic cases, no medical data) and their trainers."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.ring.toy import ToyTrainer, write_toy_site


@pytest.fixture(scope="session")
def toy_sites(tmp_path_factory) -> dict[str, Path]:
    """Sites a, b and c: four synthetic cases each, named like patients (``patient-0100.npz``)
    so the privacy checks have something to look for."""
    root = tmp_path_factory.mktemp("toy-data")
    out = {}
    for i, site in enumerate(("a", "b", "c"), start=1):
        write_toy_site(root / f"site-{site}", site_seed=i, prefix="patient")
        out[site] = root / f"site-{site}"
    return out


@pytest.fixture(scope="session")
def toy_trainers(toy_sites) -> dict[str, ToyTrainer]:
    return {s: ToyTrainer(d) for s, d in toy_sites.items()}
