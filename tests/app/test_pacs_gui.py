"""The PACS in the application, against a real Orthanc: Get studies from PACS…
(search, series, progress, cancel), the new case in the worklist, open, correct,
approve, Send to PACS, and the SEG read back."""

from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest
from orthanc import PASSWORD, USER
from pacs_data import mask_onto, series_from_nifti

from core.cases.worklist import CaseStatus
from core.io import load_ct, load_mask
from core.io.dicom_source import mask_on_source_frames, read_frames, series_files
from core.pacs.config import PacsConfig

from gui_helpers import wait_until

pytestmark = pytest.mark.timeout(300)


def test_get_from_pacs_correct_approve_and_send_back(qtbot, window, site, site_a, orthanc, monkeypatch, tmp_path):
    monkeypatch.setenv("HEMARELAY_PACS_PASSWORD", PASSWORD)
    orthanc.upload(series_from_nifti(site_a / "test" / "ct_052.nii.gz", patient_id="GUI-052", tag="gui"))
    orthanc.upload(series_from_nifti(site_a / "test" / "ct_052.nii.gz", patient_id="GUI-CANCEL", tag="gui-c"))
    w = window
    w.predictions.wanted = None  # no background prediction: this test is about the PACS
    w.open_folder(site)
    w.pacs.apply(PacsConfig(protocol="dicomweb", url=orthanc.dicomweb_url, username=USER, timeout_s=10))
    assert "password" not in (tmp_path / "config" / "settings.toml").read_text().lower()

    dlg = w.pacs.open_get_dialog()
    # cancel: nothing is added to the worklist
    dlg.patient.setText("GUI-CANCEL")
    dlg.search()
    wait_until(qtbot, lambda: dlg.study_table.rowCount() == 1 and dlg.get_button.isEnabled(), 20000)
    job = dlg.get_selected()
    job.cancel()
    wait_until(qtbot, lambda: not job.running, 20000)
    assert "Cancelled; nothing was added to the worklist" in dlg.state.text()
    assert [c.label for c in w.worklist.cases] == ["052", "067"]

    dlg.patient.setText("GUI-052")
    dlg.search()
    wait_until(qtbot, lambda: dlg.study_table.rowCount() == 1 and dlg.get_button.isEnabled(), 20000)
    assert dlg.study_table.item(0, 1).text() == "GUI-052" and dlg.series_table.rowCount() == 1
    with qtbot.waitSignal(w.pacs.caseRetrieved, timeout=60000):
        dlg.get_selected()
    assert dlg.bar.value() == 100 and "35 images" in dlg.state.text()
    new = [c for c in w.worklist.cases if c.label.startswith("pacs-")]
    assert len(new) == 1 and new[0].paths.ct.is_dir()
    label = new[0].label
    dlg.close()

    with qtbot.waitSignal(w.controller.opened, timeout=30000):
        w.open_label(label)
    s = w.controller.session
    mask = mask_onto(site_a / "test" / "mask_052.nii.gz", site_a / "test" / "ct_052.nii.gz", s.ct)
    s.model.replace(s.from_source(mask), "corrected")
    with qtbot.waitSignal(w.controller.saved, timeout=30000):
        w.controller.save()
    w.set_status(label, CaseStatus.APPROVED)
    assert w.worklist.find(label).status.status is CaseStatus.APPROVED

    job = w.pacs.send_open_case()
    wait_until(qtbot, lambda: not job.running, 60000)
    assert "sent to the PACS" in w.statusBar().currentMessage()
    segs = [
        i
        for i in orthanc.find_instances(Modality="SEG")
        if pydicom.dcmread(io.BytesIO(orthanc.instance_file(i["ID"])), stop_before_pixels=True).PatientID == "GUI-052"
    ]
    assert len(segs) == 1
    seg = tmp_path / "seg.dcm"
    seg.write_bytes(orthanc.instance_file(segs[0]["ID"]))
    from core.reports.seg import read_seg_on_frames

    ct_dir = new[0].paths.ct
    frames = read_frames(series_files(ct_dir))
    got = read_seg_on_frames(seg, [f.sop_instance_uid for f in frames])
    saved = load_mask(new[0].paths.mask, load_ct(ct_dir))
    assert np.array_equal(got, mask_on_source_frames(saved, frames)) and got.sum() == mask.sum()
