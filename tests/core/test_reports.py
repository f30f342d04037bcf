"""core.reports and ``hemarelay report``: numbers, CSV, PDF, cancellation."""

from __future__ import annotations

import csv
import io
import math
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from core.cli import main
from core.errors import CancelledError, InputError
from core.evaluation.metrics import abc2, volume_ml
from core.imaging.orientation import to_canonical
from core.imaging.volume import Volume
from core.io import load_ct, load_mask
from core.progress import CancelToken, Progress, run_collecting, run_to_end
from core.reports import (
    COLUMNS,
    DISCLAIMER,
    CanonicalCase,
    ReportJob,
    csv_text,
    export_reports,
    key_slices,
    measure_case,
    pdf_name,
    write_case_pdf,
    write_csv,
)


def _synthetic(affine: np.ndarray) -> tuple[Volume, Volume]:
    """20 x 20 x 6 grid; hematoma of 4x4 pixels on k=1, 6x5 on k=2 (largest),
    nothing on k=3, one stray voxel on k=4. CT is 60 HU in the big block,
    50 elsewhere in the mask, 30 outside."""
    ct = np.full((20, 20, 6), 30, np.int16)
    m = np.zeros((20, 20, 6), np.uint8)
    m[2:6, 2:6, 1] = 1
    m[3:9, 3:8, 2] = 1
    m[15, 15, 4] = 1
    ct[m == 1] = 50
    ct[3:9, 3:8, 2] = 60
    return Volume(ct, affine), Volume(m, affine)


LAS = np.diag([-0.5, 0.5, 4.0, 1.0])


def test_measure_case_by_hand():
    ct, mask = _synthetic(LAS)
    r = measure_case(ct, mask, "s1", "model v3", large_threshold_ml=0.003, date="2025-01-02")
    px_ml = 0.5 * 0.5 * 4.0 / 1000
    assert r.volume_ml == pytest.approx((16 + 30 + 1) * px_ml)
    assert r.n_slices == 3 and r.n_total_slices == 6 and r.slice_thickness_mm == 4.0
    assert r.largest_area_slice == 3  # canonical index 2, numbered from 1 as in the viewer
    assert r.largest_area_cm2 == pytest.approx(30 * 0.25 / 100)
    assert r.largest_area_z_mm == pytest.approx(8.0)
    assert r.mean_hu == pytest.approx((16 * 50 + 30 * 60 + 50) / 47)
    assert r.n_components == 2  # k=1 and k=2 blocks touch; the stray voxel is apart
    # ABC/2 on the 6 x 5 pixel slice: 3.0 x 2.5 mm rectangle, C = 3 slices x 4 mm
    d = math.hypot(3.0, 2.5)
    assert (r.a_mm, r.c_mm) == (pytest.approx(d), pytest.approx(12.0))
    assert r.abc2_ml == pytest.approx(d * (2 * 3.0 * 2.5 / d) * 12.0 / 2 / 1000)
    assert r.large and r.large_threshold_ml == 0.003  # 0.0047 mL >= 0.003
    assert not measure_case(ct, mask, "s1").large  # default 30 mL
    assert (r.case, r.mask_source, r.date) == ("s1", "model v3", "2025-01-02")


def test_slice_index_counts_from_inferior_in_any_source_orientation():
    # same patient, slices stored superior-first (k axis pointing down)
    ct, mask = _synthetic(LAS)
    flip = LAS.copy()
    flip[2, 2], flip[2, 3] = -4.0, 20.0  # k=0 at z=20 mm, k=5 at z=0
    ct_f, mask_f = Volume(ct.data[:, :, ::-1].copy(), flip), Volume(mask.data[:, :, ::-1].copy(), flip)
    a = measure_case(ct, mask, "x", date="d")
    b = measure_case(ct_f, mask_f, "x", date="d")
    # the largest slice is source slice 5 - 2 = 3 of the flipped copy, at the same
    # height z = 20 - 3 * 4 = 8 mm: reports count from 1 at the inferior end, so both say 3
    assert mask_f.data[:, :, 3].sum() == 30
    assert (a.largest_area_slice, b.largest_area_slice) == (3, 3)
    assert a.largest_area_z_mm == pytest.approx(8.0) and b.largest_area_z_mm == pytest.approx(8.0)
    assert b.volume_ml == pytest.approx(a.volume_ml) and b.abc2_ml == pytest.approx(a.abc2_ml)


def test_empty_mask_report():
    ct, mask = _synthetic(LAS)
    r = measure_case(ct, mask.with_data(np.zeros_like(mask.data)), "n", date="d")
    assert r.empty and r.volume_ml == 0.0 and r.abc2_ml == 0.0 and r.largest_area_slice == 0
    assert math.isnan(r.mean_hu) and math.isnan(r.largest_area_z_mm) and not r.large
    row = next(csv.DictReader(io.StringIO(csv_text([r]))))
    assert row["mean_hu"] == "" and row["largest_area_slice"] == "0" and row["large"] == "no"


def test_key_slices_spread_over_the_hematoma():
    m = np.zeros((4, 4, 30), bool)
    m[1, 1, 5:25] = True
    m[:, :, 12] = True  # largest
    cc = CanonicalCase(Volume(np.zeros((4, 4, 30), np.int16), np.eye(4)), m)
    ks = key_slices(cc, 12)
    assert 12 in ks and len(ks) == 4 and ks == sorted(ks)
    assert min(ks) > 5 and max(ks) < 24  # not the tips
    few = np.zeros((4, 4, 30), bool)
    few[1, 1, [3, 4]] = True
    assert key_slices(CanonicalCase(cc.ct, few), 3) == [3, 4]
    assert key_slices(CanonicalCase(cc.ct, np.zeros_like(few)), -1) == []


def test_write_csv_is_atomic_and_complete(tmp_path):
    ct, mask = _synthetic(LAS)
    r = measure_case(ct, mask, "s1", date="d")
    out = write_csv([r, r], tmp_path / "w.csv")
    rows = list(csv.reader(out.open()))
    assert rows[0] == [c for c, _, _ in COLUMNS] and len(rows) == 3
    assert [p.name for p in tmp_path.iterdir()] == ["w.csv"]  # no temp file left


def test_duplicate_case_names_are_refused(tmp_path):
    ct, mask = _synthetic(LAS)
    jobs = [ReportJob("a", ct, mask), ReportJob("a", ct, mask)]
    with pytest.raises(InputError, match="repeated: a"):
        run_to_end(export_reports(jobs, tmp_path / "x.csv"))
    assert pdf_name("a/b c") == "hematoma_report_a_b_c.pdf"


# ------------------------------------------------------------------ real data
def _pdf_pages(path: Path) -> int:
    try:
        from pypdf import PdfReader
    except ImportError:
        return len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", path.read_bytes()))
    return len(PdfReader(str(path)).pages)


@pytest.fixture(scope="module")
def real_jobs(site_a, site_b):
    cases = [
        (site_a / "train", "049"),  # 5.5 mL in 8 parts
        (site_b / "test", "081"),
    ]  # 41 mL: flagged large
    return [ReportJob(cid, d / f"ct_{cid}.nii.gz", d / f"mask_{cid}.nii.gz", "manual") for d, cid in cases]


def test_export_real_cases_csv_matches_metrics_and_pdfs(real_jobs, tmp_path):
    events, result = run_collecting(
        export_reports(real_jobs, tmp_path / "out" / "vol.csv", tmp_path / "pdf", date="2025-03-04")
    )
    assert all(isinstance(e, Progress) for e in events)
    assert [e.done for e in events] == [0, 1, 2] and events[-1].fraction == 1.0

    rows = list(csv.DictReader((tmp_path / "out" / "vol.csv").open()))
    assert [r["case"] for r in rows] == ["049", "081"]
    for job, row in zip(real_jobs, rows):
        ct = load_ct(job.ct)
        mask, _ = to_canonical(load_mask(job.mask, ct))
        ml = volume_ml(mask.data, mask.voxel_volume_ml)
        est = abc2(mask.data, mask.affine)
        assert float(row["volume_ml"]) == pytest.approx(ml, abs=5e-4)
        assert float(row["abc2_ml"]) == pytest.approx(est.volume_ml, abs=5e-4)
        assert float(row["abc2_c_mm"]) == pytest.approx(est.c_mm, abs=0.05)
        assert int(row["largest_area_slice"]) == est.slice_index + 1  # as the viewer numbers it
        area = mask.data[:, :, est.slice_index].sum() * mask.spacing[0] * mask.spacing[1] / 100
        assert float(row["largest_area_cm2"]) == pytest.approx(area, abs=5e-4)
        assert int(row["slices_with_hematoma"]) == np.count_nonzero(mask.data.any(axis=(0, 1)))
        assert 30 < float(row["mean_hu"]) < 100  # acute blood
        assert row["large"] == ("yes" if ml >= 30 else "no")
        assert row["date"] == "2025-03-04" and row["mask_source"] == "manual"
    assert [r["large"] for r in rows] == ["no", "yes"]

    assert sorted(p.name for p in (tmp_path / "pdf").iterdir()) == [
        "hematoma_report_049.pdf",
        "hematoma_report_081.pdf",
    ]
    assert result.pdf_paths == (
        tmp_path / "pdf" / "hematoma_report_049.pdf",
        tmp_path / "pdf" / "hematoma_report_081.pdf",
    )
    for pdf in result.pdf_paths:
        data = pdf.read_bytes()
        assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")
        assert _pdf_pages(pdf) == 1
        assert DISCLAIMER.encode() in data  # also in the document info, uncompressed
        assert str(real_jobs[0].ct.parent).encode() not in data  # no paths in the PDF
    if shutil.which("pdftotext"):
        text = subprocess.run(
            ["pdftotext", str(result.pdf_paths[1]), "-"], capture_output=True, text=True, check=True
        ).stdout
        assert "Case 081" in text and DISCLAIMER in text and "ABC/2" in text
        assert f"{result.reports[1].volume_ml:.2f} mL" in text


def test_cancelled_export_leaves_nothing(real_jobs, tmp_path):
    old = tmp_path / "vol.csv"
    old.write_text("previous export\n")
    token = CancelToken()
    gen = export_reports(real_jobs, old, tmp_path / "pdf", token=token)
    next(gen)
    next(gen)  # the first case's PDF is staged by now
    token.cancel()
    with pytest.raises(CancelledError):
        next(gen)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vol.csv"]  # no pdf/, no temp
    assert old.read_text() == "previous export\n"

    # a consumer that drops the generator half-way leaves nothing either
    gen = export_reports(real_jobs, tmp_path / "new.csv", tmp_path / "pdf2")
    next(gen)
    next(gen)
    gen.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vol.csv"]


def test_write_case_pdf_for_an_in_memory_mask(real_jobs, tmp_path):
    job = real_jobs[0]
    ct = load_ct(job.ct)
    mask = load_mask(job.mask, ct)
    edited = mask.with_data(np.zeros_like(mask.data))  # e.g. the GUI's unsaved edit
    r = measure_case(ct, edited, "049", "manual (unsaved)")
    out = write_case_pdf(r, ct, edited, tmp_path / "one.pdf")
    assert _pdf_pages(out) == 1 and [p.name for p in tmp_path.iterdir()] == ["one.pdf"]


def test_cli_report(site_b, tmp_path, capsys):
    ct = site_b / "test" / "ct_079.nii.gz"
    rc = main(
        [
            "report",
            str(ct),
            "--csv",
            str(tmp_path / "r.csv"),
            "--pdf-dir",
            str(tmp_path / "pdf"),
            "--mask-source",
            "model v2",
            "--large-ml",
            "0.1",
        ]
    )
    assert rc == 0
    row = next(csv.DictReader((tmp_path / "r.csv").open()))
    assert row["case"] == "079" and row["mask_source"] == "model v2"
    assert row["large"] == "yes" and row["large_threshold_ml"] == "0.1"  # 0.13 mL >= 0.1
    assert (tmp_path / "pdf" / "hematoma_report_079.pdf").is_file()
    assert "079" in capsys.readouterr().out

    # a mask that does not fit the CT: one line, exit 2, nothing written
    rc = main(
        ["report", str(ct), "--mask", str(site_b / "test" / "mask_081.nii.gz"), "--csv", str(tmp_path / "bad.csv")]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err[-1].startswith("hemarelay: error:") and "does not fit" in err[-1]
    assert "Traceback" not in "\n".join(err)
    assert not (tmp_path / "bad.csv").exists()

    rc = main(["report", str(site_b / "test"), "--csv", str(tmp_path / "x.csv")])
    assert rc == 2 and "pass the masks with --mask" in capsys.readouterr().err
    rc = main(["report", str(ct), "--mask", "a", "b", "--csv", str(tmp_path / "x.csv")])
    assert rc == 2 and "1 CT scan(s) but 2 mask(s)" in capsys.readouterr().err


# --------------------------------------------------------------- reports a hospital files
def _pdf_text(path: Path) -> str:
    if not shutil.which("pdftotext"):
        pytest.skip("pdftotext (poppler-utils) is not installed")
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True).stdout


def test_dicom_case_report_names_patient_study_reviewer_and_versions(data_root, tmp_path):
    """The tilted GE series with a two-part mask: patient details from the DICOM header,
    reviewer and status, 1-based slices, and ABC/2 (far off for two parts) moved out of
    the main table."""
    import pydicom

    from core.io.dicom_source import series_files

    folder = data_root / "headct" / "dicom-ge-tilt"
    ct = load_ct(folder)
    m = np.zeros(ct.shape, np.uint8)
    m[200:240, 300:340, 15] = 1  # one large slice, and a thin second part over many slices:
    m[330:333, 380:383, 3:30] = 1  # ABC/2 takes C from all of them and is far off
    mask = ct.with_data(m, source=None)
    job = ReportJob(
        "ge-tilt",
        ct,
        mask,
        "manual (mask_dicom-ge-tilt.nii.gz)",
        reviewer="dr_a",
        case_status="reviewed",
        model_version="v3 from site b (tensors sha256 0123456789ab)",
        measurements=("midline shift 4.2 mm (axial slice 16)",),
    )
    _, result = run_collecting(export_reports([job], tmp_path / "r.csv", tmp_path / "pdf", date="2026-11-30"))
    r = result.reports[0]
    ds = pydicom.dcmread(series_files(folder)[0], stop_before_pixels=True)
    assert r.study.from_dicom and r.study.patient_id == str(ds.PatientID)
    assert r.largest_area_slice == 16 and not r.abc2_agrees and r.abc2_ml > 2 * r.volume_ml
    row = next(csv.DictReader((tmp_path / "r.csv").open()))
    assert row["patient_id"] == str(ds.PatientID) and row["patient_name"] == str(ds.PatientName)
    assert row["accession_number"] == "not available" and row["study_date"] == "not available"
    assert (row["reviewer"], row["case_status"]) == ("dr_a", "reviewed")
    assert row["model_version"].startswith("v3 from site b") and row["software_version"]
    assert row["abc2_agrees"] == "no" and row["largest_area_slice"] == "16"
    assert row["measurements"] == "midline shift 4.2 mm (axial slice 16)"  # the viewer's, as in the PDF
    text = _pdf_text(result.pdf_paths[0])
    main_table = text.split("Planimetric volume = ")[0]
    assert f"Patient ID {ds.PatientID}".split()[-1] in text and "Accession number" in text
    assert "reviewed (by dr_a)" in text and "v3 from site b" in text
    assert "ABC/2" not in main_table  # not in the main figures...
    assert "ABC/2 estimate (Kothari 1996), not used" in text  # ...but stated below as an estimate
    assert "slice 16 " in text and "slice 0," not in text
    assert "Measured: midline shift 4.2 mm" in text


def test_nifti_case_report_says_patient_details_are_not_available(site_a, tmp_path):
    folder = tmp_path / "site"
    folder.mkdir()
    for kind in ("ct", "mask"):
        shutil.copy(site_a / "test" / f"{kind}_067.nii.gz", folder / f"{kind}_067.nii.gz")
    from core.cases.worklist import CaseStatus, StatusStore

    StatusStore(folder).set("067", CaseStatus.APPROVED, "dr_b")
    rc = main(
        ["report", str(folder / "ct_067.nii.gz"), "--csv", str(tmp_path / "r.csv"), "--pdf-dir", str(tmp_path / "pdf")]
    )
    assert rc == 0
    row = next(csv.DictReader((tmp_path / "r.csv").open()))
    assert row["patient_name"] == row["patient_id"] == row["accession_number"] == "not available"
    assert (row["reviewer"], row["case_status"]) == ("dr_b", "approved for training")
    text = _pdf_text(tmp_path / "pdf" / "hematoma_report_067.pdf")
    assert "not available" in text and "approved for training (by dr_b)" in text
