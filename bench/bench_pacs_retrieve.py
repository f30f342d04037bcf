"""Retrieve throughput from a real PACS (Orthanc on loopback, started here) against a
plain file copy of the same series on the same machine, printed in the same run.

Series: the tilted GE head CT (28 images) and a CT-ICH case written as a DICOM
series (35 images of 512 x 512). For each: the plain copy (read + write + fsync of
every file, as the retrieve writes each image), then ``hemarelay pacs get``'s core
(:func:`core.pacs.retrieve.retrieve_series`) over DICOMweb and over DIMSE C-GET;
"download" is the transfer into the staging folder, "total" adds the checks (reading
the series as one volume) and the move into the worklist. Median of --repeats runs.

    .venv/bin/python bench/bench_pacs_retrieve.py [--repeats 3] [--data DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # the test Orthanc and data writer

from orthanc import ALLOWED_AET, ORTHANC_AET, PASSWORD, USER, OrthancServer, orthanc_unavailable_reason
from pacs_data import series_from_nifti, write_files

from core.cases.datasets import shared_data_root
from core.pacs.client import StudyQuery
from core.pacs.config import PacsConfig
from core.pacs.connect import open_client
from core.pacs.retrieve import STAGE_CHECK, retrieve_series
from core.progress import drive

MB = 1e6


def plain_copy(files: list[Path], dest: Path) -> float:
    dest.mkdir(parents=True)
    t = time.perf_counter()
    for f in files:
        out = dest / f.name
        shutil.copyfile(f, out)
        with open(out, "rb") as fh:
            os.fsync(fh.fileno())
    return time.perf_counter() - t


def timed_retrieve(cfg: PacsConfig, study_uid: str, folder: Path) -> tuple[float, float]:
    marks: dict[str, float] = {}

    def on_event(ev) -> None:
        if ev.stage == STAGE_CHECK and "check" not in marks:
            marks["check"] = time.perf_counter()

    folder.mkdir(parents=True)
    client = open_client(cfg)
    t = time.perf_counter()
    drive(retrieve_series(client, study_uid, folder), on_event)
    end = time.perf_counter()
    client.close()
    return marks["check"] - t, end - t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, default=shared_data_root())
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    reason = orthanc_unavailable_reason()
    if reason:
        print(f"cannot run: {reason}")
        return 1
    work = Path(tempfile.mkdtemp(prefix="bench-pacs-"))
    server = OrthancServer(work / "orthanc")
    (work / "orthanc").mkdir()
    server.start()
    os.environ["HEMARELAY_PACS_PASSWORD"] = PASSWORD
    try:
        ge = sorted((args.data / "headct" / "dicom-ge-tilt").glob("*.dcm"))
        ctich = write_files(series_from_nifti(args.data / "ctich/site-a/test/ct_052.nii.gz"), work / "ctich-dicom")
        series = {"GE tilt (28 images)": ge, "CT-ICH 052 (35 images)": sorted(ctich.glob("*.dcm"))}
        for files in series.values():
            server.upload(files)
        web = PacsConfig(protocol="dicomweb", url=server.dicomweb_url, username=USER)
        dimse = PacsConfig(
            protocol="dimse", host="127.0.0.1", port=server.dicom_port, called_ae=ORTHANC_AET, calling_ae=ALLOWED_AET
        )
        studies = {s.patient_id: s.study_uid for s in open_client(web).find_studies(StudyQuery(modality="CT"))}
        import pydicom

        print(f"cpu cores: {os.cpu_count()}; Orthanc on loopback; median of {args.repeats} runs")
        print(f"{'series':26s} {'method':22s} {'MB':>6s} {'s':>7s} {'MB/s':>7s} {'slices/s':>9s}")
        n = 0
        for name, files in series.items():
            mb = sum(f.stat().st_size for f in files) / MB
            study = studies[str(pydicom.dcmread(str(files[0]), stop_before_pixels=True).PatientID)]
            rows: dict[str, list[float]] = {}
            for _ in range(args.repeats):
                n += 1
                rows.setdefault("plain file copy", []).append(plain_copy(files, work / f"copy{n}"))
                for label, cfg in (("DICOMweb", web), ("DIMSE C-GET", dimse)):
                    down, total = timed_retrieve(cfg, study, work / f"wl{n}-{label[:4]}")
                    rows.setdefault(f"{label} download", []).append(down)
                    rows.setdefault(f"{label} total", []).append(total)
            for method, times in rows.items():
                t = statistics.median(times)
                print(f"{name:26s} {method:22s} {mb:6.1f} {t:7.3f} {mb / t:7.1f} {len(files) / t:9.1f}")
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
