"""HEMARELAY_SMOKE_TEST: the packaged application's self-test quits by itself
with an exit status that says whether the case opened (packaging/smoke_test.sh)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QThreadPool

from app import main as app_main


@pytest.fixture(autouse=True)
def _close_windows(qapp):
    yield
    QThreadPool.globalInstance().waitForDone(10_000)
    for w in qapp.topLevelWidgets():
        w.close()
        w.deleteLater()


def test_smoke_mode_opens_a_real_case_and_quits(qapp, monkeypatch, site_a, tmp_path):
    ct = tmp_path / "ct_067.nii.gz"
    ct.symlink_to(site_a / "test" / "ct_067.nii.gz")  # recovery files go beside the case, not into shared data
    monkeypatch.setenv(app_main.SMOKE_TEST_ENV, "60")
    assert app_main.main(["--case", str(ct)]) == 0


def test_smoke_mode_reports_a_case_that_cannot_open(qapp, monkeypatch, tmp_path):
    monkeypatch.setenv(app_main.SMOKE_TEST_ENV, "60")
    assert app_main.main(["--case", str(tmp_path / "missing.nii.gz")]) == 1
