"""Issue 26, items 7 to 9: a status needs the case to have been looked at, a crash brings
the folder and the case back with the recovery offer, and no label describes a state that
is gone."""

from __future__ import annotations

import shutil
from dataclasses import replace

import numpy as np
from PySide6.QtCore import QThreadPool
from PySide6.QtWidgets import QMessageBox
from test_recovery import _paint_and_kill

from app.settings import Settings, load_settings
from app.viewer import Layout
from core.cases.measurements import MeasureKind
from core.cases.worklist import CaseStatus, StatusStore, scan_folder
from core.site.setup import SiteSetup

from gui_helpers import open_case, send_mouse, wait_until


def _discard_on_close(w) -> None:
    w.controller.ask = lambda *a: "Discard"
    w.ring_dock.ring.stop()
    QThreadPool.globalInstance().waitForDone(60000)


def _dialogs(w) -> list[str]:
    return [b.text() for b in w.findChildren(QMessageBox, "errorDialog") if b.isVisible()]


# ------------------------------------------------------------------ item 7
def test_a_status_needs_the_case_to_have_been_opened(qtbot, window, site):
    w = window
    w.open_folder(site)
    asked = []
    answer = ["Cancel"]
    w.controller.ask = lambda title, text, buttons: asked.append(text) or answer[0]
    panel = w.worklist_panel
    panel.table.selectAll()  # both cases, neither opened
    panel.status_combo.setCurrentIndex(panel.status_combo.findData(CaseStatus.APPROVED))
    panel.status_button.click()
    assert len(asked) == 1 and "052, 067 have not been opened" in asked[0]  # one question naming both
    assert all(c.status.status is CaseStatus.NEW for c in scan_folder(site).cases)
    answer[0] = "Mark them 'approved for training'"
    panel.status_button.click()  # confirmed: recorded
    assert all(c.status.status is CaseStatus.APPROVED for c in scan_folder(site).cases)

    # a case that was opened needs no question
    open_case(qtbot, w, site, "067")
    asked.clear()
    w.set_status("067", CaseStatus.REVIEWED)
    assert asked == [] and scan_folder(site).find("067").status.status is CaseStatus.REVIEWED

    # an unreadable scan cannot be set to reviewed, confirmed or not
    (site / "ct_999.nii.gz").write_bytes(b"\x1f\x8bnot a CT")
    w.open_folder(site)
    with qtbot.waitSignal(w.controller.failed, timeout=60000):
        w.open_label("999")
    answer[0] = "Mark them 'reviewed'"
    w.set_status("999", CaseStatus.REVIEWED)
    assert any("could not be read" in t for t in _dialogs(w)), _dialogs(w)
    assert scan_folder(site).find("999").status.status is CaseStatus.NEW
    w.controller.ask = lambda *a: "Discard"


# ------------------------------------------------------------------ item 8
def test_after_a_crash_the_folder_and_the_case_reopen_with_the_recovery_offer(qtbot, site):
    from app.window import MainWindow

    n_voxels = _paint_and_kill(site)  # the app, killed with SIGKILL while case 067 had edits
    assert load_settings().open_case.endswith("ct_067.nii.gz")
    w = MainWindow()  # a restart: the settings saved by the crashed process
    qtbot.addWidget(
        w, before_close_func=lambda x: (x.ring_dock.ring.stop(), setattr(x.controller, "ask", lambda *a: "Discard"))
    )
    asked = []
    w.controller.ask = lambda title, text, buttons: asked.append(title) or "Restore"
    w.show()
    with qtbot.waitSignal(w.controller.opened, timeout=60000):
        w.restore_session()
    assert w.worklist is not None and w.worklist.folder == site
    assert w.controller.label == "067" and asked == ["Unsaved edits found"]
    assert int(np.count_nonzero(w.controller.session.model.data)) == n_voxels
    QThreadPool.globalInstance().waitForDone(10000)


# ------------------------------------------------------------------ item 9
def test_labels_follow_the_state_they_describe(qtbot, site, tmp_path, data_root):
    from app.window import MainWindow

    w = MainWindow(Settings())  # a new workstation: nobody has given a name yet
    qtbot.addWidget(
        w, before_close_func=lambda x: (x.ring_dock.ring.stop(), setattr(x.controller, "ask", lambda *a: "Discard"))
    )
    w.resize(1500, 950)
    w.show()
    names = []
    w.ask_name = lambda: names.append(1) or "Dr Ada"
    w.controller.ask = lambda title, text, buttons: buttons[0]
    s = open_case(qtbot, w, site, "067")
    assert names == [1] and w.settings.user == "Dr Ada" and load_settings().user == "Dr Ada"  # asked once
    assert "Dr Ada" in w.user_label.text() and "root" not in w.user_label.text()

    # measurements carry their slice number
    w.viewer_actions.measure[MeasureKind.RULER].trigger()
    k = w.view.k
    send_mouse(w, "press", 100, 100)
    send_mouse(w, "release", 100, 100)
    send_mouse(w, "press", 100, 160)
    send_mouse(w, "release", 100, 160)
    wait_until(qtbot, lambda: w.measure_panel.list.count() == 1)
    line = w.measure_panel.list.item(0).text()
    assert f"axial slice {k + 1}" in line and "Dr Ada" in line

    # the status and the report panel follow a re-approval under a new name
    w.set_status("067", CaseStatus.REVIEWED)
    w.apply_settings(replace(w.settings, user="Dr Bo"))  # Preferences: another reader
    w.set_status("067", CaseStatus.APPROVED)
    assert StatusStore(site).get("067").user == "Dr Bo"
    wait_until(qtbot, lambda: "by Dr Bo" in w.report_panel.state.text())
    assert names == [1]

    # the corner texts never overlap and stay readable over bone (a dark box behind them)
    w.viewer_actions.layouts[Layout.GRID].trigger()
    qtbot.wait(100)
    send_mouse(w, "move", 250, 250)
    for v in w.viewer.views.values():
        shown = [(k, lab.geometry()) for k, lab in v.labels.items() if lab.isVisible() and lab.text()]
        for i, (a, ga) in enumerate(shown):
            assert "rgba(0, 0, 0" in v.labels[a].styleSheet(), a
            for b, gb in shown[i + 1 :]:
                assert not ga.intersects(gb), (v.plane.value, a, b)

    # opening another site folder closes the case of the previous one
    other = tmp_path / "other-site"
    other.mkdir()
    for name in ("ct_052.nii.gz", "mask_052.nii.gz"):
        shutil.copy(site / name, other / name)
    w.open_folder(other)
    assert w.controller.session is None and w.view.hu is None and w.windowTitle() == "Hematoma Relay"

    # ring messages about the old data folder go when the folder changes
    w.ring_dock.models.show_evaluation(f"Model v1 was not evaluated: nothing reviewed in {site}")
    w.apply_site(SiteSetup(site="solo", data_folder=str(other), poll_s=60.0))
    assert str(site) not in w.ring_dock.models.eval_label.text()

    # a DICOM series' mask, prediction and lock go neither into its folder nor beside it
    cd = tmp_path / "cd"
    series = cd / "ge-tilt"
    shutil.copytree(data_root / "headct" / "dicom-ge-tilt", series)
    before = sorted(p.name for p in cd.rglob("*"))
    with qtbot.waitSignal(w.controller.opened, timeout=90000):
        w.controller.open_case(series)
    s = w.controller.session
    s.model.set_slice_region(18, np.ones((20, 20), bool), 1, (250, 250))
    with qtbot.waitSignal(w.controller.saved, timeout=30000):
        w.actions.save.trigger()
    assert sorted(p.name for p in cd.rglob("*")) == before
    assert s.paths.mask.is_file() and not s.paths.mask.is_relative_to(cd)
    assert any("kept in" in n for n in s.notes)
    w.controller.close_case()
    assert load_settings().open_case == ""  # closed cleanly: nothing to reopen after a restart
    QThreadPool.globalInstance().waitForDone(10000)
