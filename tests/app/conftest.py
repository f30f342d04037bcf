"""Fixtures for the GUI tests: offscreen Qt, a writable copy of real cases, the window."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
import pytest
from scipy import ndimage

from core.io import load_ct, load_mask, save_mask

CASES = ("067", "052")  # the two smallest site-a/test cases (31 and 35 slices)


def make_stand_in_prediction(folder: Path, case: str) -> np.ndarray:
    """A stand-in for the model's pred_NNN.nii.gz (no trained model is part of
    the tests): the radiologists' mask grown by 3 pixels in-plane, without its
    lowest slice, plus a false-positive blob of 10 x 10 pixels."""
    ct = load_ct(folder / f"ct_{case}.nii.gz")
    m = load_mask(folder / f"mask_{case}.nii.gz", ct).data
    pred = ndimage.binary_dilation(m, structure=np.ones((7, 7, 1), bool)).astype(np.uint8)
    ks = np.flatnonzero(m.any(axis=(0, 1)))
    pred[:, :, ks[0]] = 0
    pred[300:310, 200:210, ks[len(ks) // 2]] = 1
    save_mask(pred, ct, folder / f"pred_{case}.nii.gz")
    return pred


@pytest.fixture(autouse=True)
def _user_config(tmp_path: Path, monkeypatch):
    """Preferences and the site's ring state (model versions, embedded ring, audit
    log) go to temp folders, never to the developer's own."""
    monkeypatch.setenv("HEMARELAY_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))


@pytest.fixture(autouse=True)
def _collect_qt_garbage():
    """Destroy the previous test's Python-owned Qt objects here, on the GUI thread,
    rather than whenever a later garbage collection happens to run (possibly on a
    worker thread, while their queued signals are still pending)."""
    yield
    import gc

    from PySide6.QtCore import QThreadPool
    from PySide6.QtWidgets import QApplication

    from app.click_controller import click_pool

    QThreadPool.globalInstance().waitForDone(60000)
    click_pool().waitForDone(60000)
    QApplication.processEvents()
    gc.collect()
    QApplication.processEvents()


@pytest.fixture()
def site(site_a: Path, tmp_path: Path) -> Path:
    """A writable site folder with cases 067 (with a stand-in prediction) and 052."""
    folder = tmp_path / "site"
    folder.mkdir()
    for case in CASES:
        for kind in ("ct", "mask"):
            name = f"{kind}_{case}.nii.gz"
            shutil.copy(site_a / "test" / name, folder / name)
            os.chmod(folder / name, 0o644)
    make_stand_in_prediction(folder, "067")
    return folder


@pytest.fixture()
def window(qtbot):
    from PySide6.QtCore import QThreadPool

    from app.settings import Settings
    from app.window import MainWindow

    def unexpected(title, text, buttons):
        pytest.fail(f"unexpected question {title!r}: {text}")

    def discard_on_close(widget) -> None:
        widget.controller.ask = lambda *a: "Discard"
        widget.ring_dock.ring.stop()  # no ring job may outlive the window it reports to
        QThreadPool.globalInstance().waitForDone(60000)

    w = MainWindow(Settings(user="tester"))
    # large enough that the axial view (two thirds of the centre) has a screen pixel
    # per image pixel: tests click on exact pixels
    w.resize(2400, 1400)
    w.controller.ask = unexpected  # a test that expects a question sets its answer
    qtbot.addWidget(w, before_close_func=discard_on_close)
    w.show()
    qtbot.waitExposed(w)
    yield w
    QThreadPool.globalInstance().waitForDone(10000)
