"""The hospital's PACS in the loop, against a real Orthanc (tests/orthanc.py):
find, retrieve into the worklist, open, approve, send SEG + SR back, read back.

Real data: the tilted GE series from ../shared/data and a CT-ICH case written
as a DICOM series (tests/pacs_data.py).
"""

from __future__ import annotations

import io
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pydicom
import pytest
from orthanc import ALLOWED_AET, ORTHANC_AET, PASSWORD, USER
from pacs_data import mask_onto, series_from_nifti

from core.cases.worklist import CaseStatus, scan_folder
from core.errors import CancelledError, ConfigError
from core.io import load_ct, load_mask, save_mask
from core.io.dicom_source import mask_on_source_frames, read_frames, series_files
from core.pacs.client import StudyQuery
from core.pacs.config import PacsConfig, pacs_from_toml
from core.pacs.connect import open_client
from core.pacs.errors import PacsDataError, PacsError
from core.pacs.retrieve import STAGING, retrieve_series
from core.pacs.send import send_case
from core.pacs.sr import read_sr
from core.progress import CancelToken, run_collecting, run_to_end
from core.reports.seg import read_seg_on_frames

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(autouse=True)
def _password(monkeypatch):
    monkeypatch.setenv("HEMARELAY_PACS_PASSWORD", PASSWORD)


def web(server, **kw) -> PacsConfig:
    base = PacsConfig(protocol="dicomweb", url=server.dicomweb_url, username=USER, timeout_s=10)
    return replace(base, **kw)


def dimse(server, **kw) -> PacsConfig:
    base = PacsConfig(
        protocol="dimse",
        host="127.0.0.1",
        port=server.dicom_port,
        called_ae=ORTHANC_AET,
        calling_ae=ALLOWED_AET,
        timeout_s=10,
    )
    return replace(base, **kw)


@pytest.fixture(scope="module")
def ctich(data_root) -> Path:
    return data_root / "ctich" / "site-a" / "test"


@pytest.fixture(scope="module")
def loaded(orthanc, data_root, ctich):
    """The session Orthanc holding the GE tilt series and CT-ICH case 052 as DICOM."""
    orthanc.clear()
    orthanc.upload(sorted((data_root / "headct" / "dicom-ge-tilt").glob("*.dcm")))
    orthanc.upload(series_from_nifti(ctich / "ct_052.nii.gz"))
    return orthanc


def _study(client, **query):
    found = client.find_studies(StudyQuery(**query))
    assert len(found) == 1, found
    return found[0]


def _seg_and_sr(server, source_series_uid: str) -> tuple[list[dict], list[dict]]:
    segs = [i for i in server.find_instances(Modality="SEG") if _refs(server, i, source_series_uid)]
    srs = [i for i in server.find_instances(Modality="SR") if _refs(server, i, source_series_uid)]
    return segs, srs


def _refs(server, inst, series_uid: str) -> bool:
    ds = pydicom.dcmread(io.BytesIO(server.instance_file(inst["ID"])), stop_before_pixels=True)
    seqs = ds.get("ReferencedSeriesSequence") or []
    if any(str(s.SeriesInstanceUID) == series_uid for s in seqs):
        return True
    evidence = ds.get("CurrentRequestedProcedureEvidenceSequence") or []
    return any(str(s.SeriesInstanceUID) == series_uid for e in evidence for s in e.ReferencedSeriesSequence)


def _read(server, inst) -> pydicom.Dataset:
    return pydicom.dcmread(io.BytesIO(server.instance_file(inst["ID"])))


# ---------------------------------------------------------------- set-up, no server
def test_pacs_settings_hold_no_password_and_credentials_come_from_env_or_keyring(monkeypatch, tmp_path):
    with pytest.raises(ConfigError, match="Passwords never go in the settings file"):
        pacs_from_toml({"protocol": "dicomweb", "url": "https://p/dicom-web", "password": "x"})
    with pytest.raises(ConfigError, match="AE title"):
        PacsConfig(protocol="dimse", host="h", called_ae="BAD\\AE").validated()
    with pytest.raises(ConfigError, match="DICOMweb base URL"):
        PacsConfig(protocol="dicomweb", url="ftp://x").validated()
    with pytest.raises(ConfigError, match="No PACS is configured"):
        PacsConfig().require()

    import keyring
    from keyring.backend import KeyringBackend

    from core.pacs import credentials

    class Memory(KeyringBackend):
        priority = 1
        store: dict = {}

        def get_password(self, service, username):
            return self.store.get((service, username))

        def set_password(self, service, username, password):
            self.store[(service, username)] = password

        def delete_password(self, service, username):
            self.store.pop((service, username), None)

    cfg = PacsConfig(protocol="dicomweb", url="https://pacs/dicom-web", username="u")
    monkeypatch.delenv("HEMARELAY_PACS_PASSWORD")
    before = keyring.get_keyring()
    keyring.set_keyring(Memory())
    try:
        with pytest.raises(ConfigError, match="No password for the PACS user u"):
            credentials.password(cfg)
        assert credentials.password(cfg, prompt=lambda _q: "typed") == "typed"
        credentials.remember(cfg, "kept")
        assert credentials.password(cfg) == "kept"
        monkeypatch.setenv("HEMARELAY_PACS_PASSWORD", "from-env")
        assert credentials.password(cfg) == "from-env"  # the environment wins (a service account)
        credentials.forget(cfg)
    finally:
        keyring.set_keyring(before)
    assert credentials.password(replace(cfg, username="")) is None  # no user: no authentication


# ---------------------------------------------------------------- the whole loop, DICOMweb
def test_dicomweb_find_get_open_approve_send_and_read_back(loaded, ctich, tmp_path):
    client = open_client(web(loaded))
    study = _study(client, patient_id="CTICH-052", date_from="2024-01-01", date_to="2024-01-31")
    assert study.has_ct and study.accession_number == "ACC052" and study.n_instances == 35
    assert _study(client, accession_number="ACC052").study_uid == study.study_uid
    assert client.find_studies(StudyQuery(patient_id="CTICH-052", modality="MR")) == []

    events, result = run_collecting(retrieve_series(client, study.study_uid, tmp_path))
    assert result.n_images == 35 and result.resumed == 0 and result.ct.name == f"ct_{result.case_id}"
    fractions = [e.fraction for e in events if e.stage == "Downloading"]
    assert fractions[-1] == 1.0 and len(fractions) == 36
    assert not (tmp_path / STAGING).exists()

    # the worklist lists it like any case; it opens exactly as a DICOM folder does
    wl = scan_folder(tmp_path)
    (case,) = wl.cases
    assert case.label == result.case_id and case.paths.ct == result.ct and not case.has_mask
    ct = load_ct(case.paths.ct)
    assert ct.shape == (512, 512, 35)
    from core.annotation.session import open_case

    session = run_to_end(open_case(case.paths.ct, user="dr-a"))
    mask = mask_onto(ctich / "mask_052.nii.gz", ctich / "ct_052.nii.gz", session.ct)
    session.model.replace(session.from_source(mask), "reference mask")
    snap = session.snapshot()
    run_to_end(session.save(snap))
    session.saved(snap)
    session.close()
    wl.mask_saved(case.label, "dr-a")
    with pytest.raises(Exception, match="reviewed"):  # in progress: not sendable yet
        run_to_end(send_case(client, case.paths.ct))
    wl.set_status(case.label, CaseStatus.APPROVED, "dr-a", unopened_ok=True)

    sent = run_to_end(send_case(client, case.paths.ct, include_pdf=True, model_version="default v1"))
    assert sent.n_objects == 3
    source_uid = sent.source_series_uid
    segs, srs = _seg_and_sr(loaded, source_uid)
    assert len(segs) == 1 and len(srs) == 1
    assert len(loaded.find_instances(Modality="DOC")) == 1

    # the SEG's frames are the mask on the source images; its volume and the SR's are the mask's
    seg_path = tmp_path / "seg.dcm"
    seg_path.write_bytes(loaded.instance_file(segs[0]["ID"]))
    frames = read_frames(series_files(case.paths.ct))
    on_frames = read_seg_on_frames(seg_path, [f.sop_instance_uid for f in frames])
    saved = load_mask(case.paths.mask, ct)
    expected = mask_on_source_frames(saved, frames)
    assert np.array_equal(on_frames, expected) and on_frames.sum() == mask.sum() == 6738
    voxel_ml = abs(np.linalg.det(ct.affine[:3, :3])) / 1000
    mask_ml = float(mask.sum()) * voxel_ml
    seg_ml = float(on_frames.sum()) * frames[0].row_spacing * frames[0].col_spacing * 5.0 / 1000
    assert abs(seg_ml - mask_ml) < 0.1
    back = read_sr(_read(loaded, srs[0]))
    assert abs(back.volume_ml - mask_ml) < 0.1 and abs(sent.volume_ml - mask_ml) < 0.1
    assert back.referenced_seg_uid == sent.uids.seg and back.source_series_uid == source_uid
    assert back.first_slice is not None and back.last_slice >= back.first_slice
    assert "default v1" in back.model_parameter
    # ABC/2 only where it agrees with the measured volume (within 2x), as the panel and PDF show it
    assert (back.abc2_ml is None) == (sent.abc2_ml is None)
    assert back.abc2_ml is None or abs(back.abc2_ml - sent.abc2_ml) < 1e-3
    doc = _read(loaded, loaded.find_instances(Modality="DOC")[0])
    assert bytes(doc.EncapsulatedDocument).startswith(b"%PDF")
    assert doc.StudyInstanceUID == study.study_uid

    # re-sending the same approved mask replaces: still one SEG and one SR
    again = run_to_end(send_case(client, case.paths.ct, include_pdf=True))
    assert again.uids == sent.uids
    segs, srs = _seg_and_sr(loaded, source_uid)
    assert len(segs) == 1 and len(srs) == 1 and len(loaded.find_instances(Modality="DOC")) == 1

    # a second get of the same series finds the case already there
    assert run_to_end(retrieve_series(client, study.study_uid, tmp_path)).already_present
    client.close()


# ---------------------------------------------------------------- DIMSE, the tilted series
def test_dimse_find_get_tilted_series_and_send_back(loaded, data_root, tmp_path):
    client = open_client(dimse(loaded))
    tilt_uid = str(pydicom.dcmread(sorted((data_root / "headct/dicom-ge-tilt").glob("*.dcm"))[0]).StudyInstanceUID)
    studies = {s.study_uid: s for s in client.find_studies(StudyQuery(modality="CT"))}
    assert tilt_uid in studies and studies[tilt_uid].has_ct
    site = tmp_path / "site"
    (site / "test").mkdir(parents=True)
    for name in ("ct_052.nii.gz", "mask_052.nii.gz"):
        (site / "test" / name).symlink_to(data_root / "ctich/site-a/test" / name)
    result = run_to_end(retrieve_series(client, tilt_uid, site))
    # a site folder laid out in sub-folders gets its PACS cases in pacs/, beside test/
    assert result.ct.parent == site / "pacs" and result.n_images == 28
    assert "gantry tilt" in result.note
    labels = [c.label for c in scan_folder(site).cases]
    assert labels == [f"pacs/{result.case_id}", "test/052"]

    ct = load_ct(result.ct)
    assert any("gantry tilt" in n for n in ct.notes)
    blob = np.zeros(ct.shape, np.uint8)
    c = np.array(ct.shape) // 2
    blob[c[0] - 20 : c[0] + 20, c[1] - 20 : c[1] + 20, c[2] - 3 : c[2] + 3] = 1
    save_mask(blob, ct, result.ct.parent / f"mask_{result.case_id}.nii.gz")
    wl = scan_folder(site)
    wl.set_status(f"pacs/{result.case_id}", CaseStatus.REVIEWED, "dr-b", unopened_ok=True)
    sent = run_to_end(send_case(client, result.ct))
    segs, srs = _seg_and_sr(loaded, sent.source_series_uid)
    assert len(segs) == 1 and len(srs) == 1
    seg_path = tmp_path / "seg.dcm"
    seg_path.write_bytes(loaded.instance_file(segs[0]["ID"]))
    frames = read_frames(series_files(result.ct))
    on_frames = read_seg_on_frames(seg_path, [f.sop_instance_uid for f in frames])
    assert np.array_equal(
        on_frames, mask_on_source_frames(load_mask(result.ct.parent / f"mask_{result.case_id}.nii.gz", ct), frames)
    )
    assert abs(read_sr(_read(loaded, srs[0])).volume_ml - sent.volume_ml) < 0.1

    # the AE title whitelist: another calling AE title is refused, with what to check
    stranger = open_client(dimse(loaded, calling_ae="STRANGER"))
    with pytest.raises(PacsError, match="STRANGER"):
        stranger.find_studies(StudyQuery())


# ---------------------------------------------------------------- bad servers
def test_wrong_credentials_and_unreachable_server_say_so_in_one_line(loaded, monkeypatch, tmp_path):
    monkeypatch.setenv("HEMARELAY_PACS_PASSWORD", "wrong")
    with pytest.raises(PacsError, match="refused the user name or password \\(HTTP 401\\)") as info:
        run_to_end(retrieve_series(open_client(web(loaded)), "1.2.3", tmp_path))
    assert "\n" not in str(info.value)
    assert list(tmp_path.iterdir()) == []
    closed = PacsConfig(protocol="dicomweb", url="http://127.0.0.1:9/dicom-web", username=USER, timeout_s=5)
    with pytest.raises(PacsError, match="Cannot reach the PACS"):
        open_client(closed).find_studies(StudyQuery())
    with pytest.raises(PacsError, match="no association"):
        open_client(dimse(loaded, port=9)).find_studies(StudyQuery())


@pytest.mark.parametrize("protocol", ["dicomweb", "dimse"])
def test_server_stopping_mid_transfer_leaves_nothing_and_the_retrieve_resumes(
    orthanc_factory, ctich, tmp_path, protocol
):
    server = orthanc_factory()
    server.upload(series_from_nifti(ctich / "ct_052.nii.gz", patient_id="STOPS"))
    cfg = web(server) if protocol == "dicomweb" else dimse(server)
    client = open_client(cfg)
    study = _study(client, patient_id="STOPS")
    gen = retrieve_series(client, study.study_uid, tmp_path)
    with pytest.raises(PacsError) as info:
        for ev in gen:
            if getattr(ev, "images_done", 0) == 10:
                server.kill()
    message = str(info.value)
    kept = re.search(r"(\d+) of 35 images are kept aside \(not in the worklist\)", message)
    assert "\n" not in message and kept, message
    kept = int(kept.group(1))  # 10, or more when a streamed answer had buffered some
    assert 10 <= kept < 35 and len(list((tmp_path / STAGING).rglob("*.dcm"))) == kept
    assert list(p.name for p in tmp_path.iterdir()) == [STAGING]  # no case in the worklist
    with pytest.raises(Exception, match="no cases"):
        scan_folder(tmp_path)
    server.start()
    result = run_to_end(retrieve_series(open_client(cfg), study.study_uid, tmp_path))
    assert result.resumed == kept and result.n_images == 35
    assert [c.label for c in scan_folder(tmp_path).cases] == [result.case_id]
    assert load_ct(result.ct).shape == (512, 512, 35)


# ---------------------------------------------------------------- bad data
def test_non_ct_missing_slices_size_limit_and_cancel(orthanc_factory, ctich, tmp_path):
    server = orthanc_factory()
    ct = ctich / "ct_052.nii.gz"
    server.upload(series_from_nifti(ct, patient_id="MR1", modality="MR", tag="mr"))
    server.upload(series_from_nifti(ct, patient_id="HOLES", skip=(12, 13), tag="holes"))
    server.upload(series_from_nifti(ct, patient_id="BIG", tag="big"))
    client = open_client(web(server))

    mr = _study(client, patient_id="MR1", modality="")
    assert not mr.has_ct
    with pytest.raises(PacsDataError, match="has no CT series \\(it holds MR\\)"):
        run_to_end(retrieve_series(client, mr.study_uid, tmp_path))
    assert list(tmp_path.iterdir()) == []

    holes = _study(client, patient_id="HOLES")
    with pytest.raises(PacsDataError, match="lacks slices: image number\\(s\\) 13, 14 of 1 to 35"):
        run_to_end(retrieve_series(client, holes.study_uid, tmp_path))
    assert list(tmp_path.iterdir()) == []

    big = _study(client, patient_id="BIG")
    small = open_client(web(server, max_study_mb=5))
    with pytest.raises(PacsDataError, match="over this site's limit of 5 MB") as info:
        run_to_end(retrieve_series(small, big.study_uid, tmp_path))
    assert "about 18 MB (35 images)" in str(info.value)
    staged = list((tmp_path / STAGING).rglob("*.dcm"))
    assert len(staged) <= 1  # judged on the first image: the rest never came

    token = CancelToken()
    gen = retrieve_series(client, big.study_uid, tmp_path, token=token)
    with pytest.raises(CancelledError):
        for ev in gen:
            if getattr(ev, "images_done", 0) == 5:
                token.cancel()
    with pytest.raises(Exception, match="no cases"):
        scan_folder(tmp_path)
    result = run_to_end(retrieve_series(client, big.study_uid, tmp_path))
    assert result.resumed == 5 and result.n_images == 35
    assert [c.label for c in scan_folder(tmp_path).cases] == [result.case_id]


# ---------------------------------------------------------------- TLS
def test_tls_dicomweb_https_and_dicom_tls_checked_against_the_ca_file(orthanc_factory, data_root, tmp_path):
    server = orthanc_factory(tls=True)
    server.upload(sorted((data_root / "headct" / "dicom-ge-tilt").glob("*.dcm"))[:3])
    ca = str(server.ca_file)
    assert server.dicomweb_url.startswith("https://")
    assert len(open_client(web(server, ca_file=ca)).find_studies(StudyQuery())) == 1
    with pytest.raises(PacsError, match="TLS certificate that is not trusted"):
        open_client(web(server)).find_studies(StudyQuery())
    assert len(open_client(dimse(server, tls=True, ca_file=ca)).find_studies(StudyQuery())) == 1
    with pytest.raises(PacsError, match="TLS"):
        open_client(dimse(server, tls=True)).find_studies(StudyQuery())  # not our CA: refused


# ---------------------------------------------------------------- the command line
def test_cli_pacs_find_get_send(loaded, ctich, tmp_path, monkeypatch, capsys):
    import tomli_w

    from core.cli import main

    folder = tmp_path / "worklist"
    folder.mkdir()
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "settings.toml").write_text(
        tomli_w.dumps({"site": {"data_folder": str(folder)}, "pacs": web(loaded).__dict__ | {"timeout_s": 10.0}})
    )
    monkeypatch.setenv("HEMARELAY_CONFIG_DIR", str(conf))
    assert "password" not in (conf / "settings.toml").read_text()

    assert main(["pacs", "find", "--patient-id", "CTICH-052", "--from", "2024-01-01"]) == 0
    out = capsys.readouterr().out
    (row,) = [line for line in out.splitlines() if "CTICH-052" in line]
    study_uid = row.split("\t")[0]
    assert "ACC052" in row and "CT" in row.split("\t")[5].split("/")
    assert main(["pacs", "find", "--study", study_uid]) == 0
    assert "HEAD 5mm" in capsys.readouterr().out

    assert main(["pacs", "get", study_uid]) == 0  # into the site data folder of the settings
    out = capsys.readouterr().out
    (case,) = scan_folder(folder).cases
    assert f"Case {case.case_id}: 35 images" in out

    assert main(["pacs", "send", str(case.paths.ct)]) == 2  # no mask yet: one line, status 2
    assert "has no saved mask" in capsys.readouterr().err
    ct = load_ct(case.paths.ct)
    save_mask(mask_onto(ctich / "mask_052.nii.gz", ctich / "ct_052.nii.gz", ct), ct, case.paths.mask)
    scan_folder(folder).set_status(case.label, CaseStatus.REVIEWED, "dr-c", unopened_ok=True)
    assert main(["pacs", "send", str(case.paths.ct), "--no-pdf"]) == 0
    assert "SEG and SR sent to the PACS" in capsys.readouterr().out

    monkeypatch.setenv("HEMARELAY_PACS_PASSWORD", "wrong")
    assert main(["pacs", "find"]) == 2
    err = capsys.readouterr().err
    assert "refused the user name or password" in err and len(err.strip().splitlines()) == 1


# ---------------------------------------------------------------- the ring: images stay at the site
@pytest.mark.slow
def test_a_pacs_case_trains_at_the_site_and_nothing_of_it_reaches_the_ring(loaded, ctich, tmp_path, monkeypatch):
    from core.model.architectures import build_network
    from core.site.training import plan_turn, train_my_turn

    from privacy_scan import forbidden_terms, scan_server_dir
    from ring_helpers import solo_site

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    folder = tmp_path / "site"
    folder.mkdir()
    client = open_client(web(loaded))
    result = run_to_end(retrieve_series(client, _study(client, patient_id="CTICH-052").study_uid, folder))
    ct = load_ct(result.ct)
    save_mask(
        mask_onto(ctich / "mask_052.nii.gz", ctich / "ct_052.nii.gz", ct), ct, folder / f"mask_{result.case_id}.nii.gz"
    )
    scan_folder(folder).set_status(result.case_id, CaseStatus.APPROVED, "dr-a", unopened_ok=True)
    setup = solo_site(folder, "min_approved=1")
    assert [c.case_id for c in plan_turn(setup).cases] == [result.case_id]  # trained on like any case
    outcome = run_to_end(train_my_turn(setup, CancelToken()))
    assert outcome.trained

    # the privacy check knows a DICOM case's folder, id and its patient's identifiers...
    terms = forbidden_terms(folder)
    assert {result.case_id, f"ct_{result.case_id}", "CTICH-052", "ACC052"} <= terms
    # ...and finds none of them (nor any path, file or non-weight tensor) on the ring
    ring = tmp_path / "state" / "hemarelay" / "local-ring" / "solo"
    shapes = {k: tuple(v.shape) for k, v in build_network("inception", 4).state_dict().items()}
    assert scan_server_dir(ring, terms, shapes) == []
    assert not [p for p in ring.rglob("*") if p.suffix == ".dcm"]
