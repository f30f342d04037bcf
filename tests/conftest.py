"""Shared fixtures: the real data folder, with skip-or-fail semantics.

Tests that need ``../shared/data`` (or ``$HEMARELAY_DATA``) use the
``data_root`` fixture. When the folder is missing they skip with the reason,
unless ``HEMARELAY_REQUIRE_DATA=1`` (set by ``.ci/run``), where they fail.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.cases.datasets import shared_data_root

# The real-sshd fixtures (sshd, sshd_factory) and the real Orthanc PACS (orthanc,
# orthanc_factory), registered once for every test
# module, so that the whole run shares one session sshd.
pytest_plugins = ["sshd", "orthanc"]


def _require(var: str) -> bool:
    return os.environ.get(var, "") not in ("", "0")


@pytest.fixture(scope="session")
def data_root() -> Path:
    root = shared_data_root()
    if not (root / "ctich").is_dir():
        msg = f"real data not found at {root} (set HEMARELAY_DATA to the folder holding ctich/ and headct/)"
        if _require("HEMARELAY_REQUIRE_DATA"):
            pytest.fail(msg + "; HEMARELAY_REQUIRE_DATA=1 makes this a failure")
        pytest.skip(msg)
    return root


@pytest.fixture(scope="session")
def site_a(data_root: Path) -> Path:
    return data_root / "ctich" / "site-a"


@pytest.fixture(scope="session")
def site_b(data_root: Path) -> Path:
    return data_root / "ctich" / "site-b"
