"""An approved case's results back to the PACS: DICOM SEG + TID 1500 SR (+ PDF).

Only a case whose saved mask a clinician has signed off (status "reviewed" or
"approved for training", no unsaved edits) and that came from a DICOM series
is sent. The SEG is the one ``hemarelay export-seg`` writes (the mask on the
source frames, gantry tilt included); the SR states the volumes and
references that SEG and the source series; the optional Encapsulated PDF is
the case's PDF report. Every UID is derived from the source series UID and
the approved mask's hash (:mod:`.uids`): sending the same mask again gives the
same objects, which the PACS replaces or keeps once, never twice. A corrected
mask is a new object in the same series.
"""

from __future__ import annotations

import io
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Generator

import numpy as np

from ..cases.case_files import CaseFiles, case_files
from ..errors import InputError
from ..progress import NEVER_CANCELLED, CancelToken, Progress
from .client import PacsClient
from .pdf import encapsulated_pdf
from .sr import HematomaNumbers, build_sr
from .uids import derived_uid, mask_digest

STAGE_BUILD = "Preparing SEG and report"
STAGE_STORE = "Sending to the PACS"
SENDABLE = ("reviewed", "approved for training")


@dataclass(frozen=True)
class SendUids:
    seg_series: str
    seg: str
    sr_series: str
    sr: str
    pdf_series: str
    pdf: str
    tracking: str
    device: str

    @classmethod
    def derive(cls, source_series_uid: str, digest: str) -> "SendUids":
        s = source_series_uid
        return cls(
            seg_series=derived_uid("seg-series", s),
            seg=derived_uid("seg", s, digest),
            sr_series=derived_uid("sr-series", s),
            sr=derived_uid("sr", s, digest),
            pdf_series=derived_uid("pdf-series", s),
            pdf=derived_uid("pdf", s, digest),
            tracking=derived_uid("tracking", s, digest),
            device=derived_uid("device"),
        )


@dataclass(frozen=True)
class SendResult:
    case_id: str
    uids: SendUids
    source_series_uid: str
    study_uid: str
    volume_ml: float
    abc2_ml: float | None  # None: off by more than 2x the measured volume, not reported
    n_objects: int  # SEG, SR and the PDF when sent
    mask_digest: str

    def text(self) -> str:
        what = "SEG, SR and PDF" if self.n_objects == 3 else "SEG and SR"
        abc2 = f"ABC/2 {self.abc2_ml:.1f} mL" if self.abc2_ml is not None else "ABC/2 off by more than 2x, not reported"
        return (
            f"Case {self.case_id}: {what} sent to the PACS ({self.volume_ml:.1f} mL, {abc2}); "
            "sending the same mask again replaces them."
        )


def check_sendable(paths: CaseFiles) -> str:
    """The case's status when it may be sent; else InputError saying why not."""
    from ..annotation.recovery import pending_recovery
    from ..cases.worklist import StatusStore
    from ..reports.seg import why_no_seg

    reason = why_no_seg(paths.ct)
    if reason:
        raise InputError(f"Case {paths.case_id}: {reason}")
    if not paths.mask.exists():
        raise InputError(f"Case {paths.case_id} has no saved mask ({paths.mask.name}); nothing to send.")
    if pending_recovery(paths.recovery, paths.mask) is not None:
        raise InputError(f"Case {paths.case_id} has unsaved edits; save or discard them before sending.")
    status = StatusStore(paths.folder).get(paths.case_id).status.value
    if status not in SENDABLE:
        raise InputError(
            f"Case {paths.case_id} is '{status}'; mark it reviewed (or approved) after checking the mask, "
            "then send it to the PACS."
        )
    return status


def _bytes(ds) -> bytes:
    import pydicom

    buf = io.BytesIO()
    pydicom.dcmwrite(buf, ds, enforce_file_format=True)
    return buf.getvalue()


def build_objects(paths: CaseFiles, include_pdf: bool, model_version: str = "", reviewer: str = ""):
    """The SEG, SR (and PDF) of a case as DICOM file bytes, and the result that describes them."""
    import pydicom

    from ..cases.worklist import StatusStore
    from ..io import load_ct, load_mask
    from ..io.dicom_source import series_files, study_info
    from ..reports.case import CanonicalCase, measure_canonical
    from ..reports.pdf import write_case_pdf
    from ..reports.seg import build_seg, saved_mask_provenance, seg_provenance, with_type2_attributes

    ct = load_ct(paths.ct)
    mask = load_mask(paths.mask, ct)
    headers = [with_type2_attributes(pydicom.dcmread(str(f), stop_before_pixels=True)) for f in series_files(paths.ct)]
    source_series = str(headers[0].SeriesInstanceUID)
    digest = mask_digest(mask.data)
    uids = SendUids.derive(source_series, digest)
    record = StatusStore(paths.folder).get(paths.case_id)
    reviewer = reviewer or record.user or "unknown"
    prov = saved_mask_provenance(paths.ct, paths.mask, mask)  # "model X, corrected by Y" travels with the SEG
    seg, _ = build_seg(
        paths.ct,
        mask,
        **seg_provenance(prov, creator=reviewer),
        series_uid=uids.seg_series,
        sop_uid=uids.seg,
        tracking_uid=uids.tracking,
    )
    cc = CanonicalCase.from_volumes(ct, mask)
    report = measure_canonical(
        cc,
        paths.case_id,
        "manual",
        extra={
            "study": study_info(ct),
            "reviewer": reviewer,
            "case_status": record.status.value,
            "model_version": model_version,
        },
    )
    ks = np.flatnonzero(cc.mask.any(axis=(0, 1)))
    numbers = HematomaNumbers(
        volume_ml=report.volume_ml,
        abc2_ml=report.abc2_ml if report.abc2_agrees else None,
        first_slice=int(ks[0]) + 1 if len(ks) else 0,
        last_slice=int(ks[-1]) + 1 if len(ks) else 0,
        n_slices=report.n_slices,
        largest_area_cm2=report.largest_area_cm2,
        model_version=model_version,
        reviewer=reviewer,
    )
    sr = build_sr(
        numbers,
        seg,
        headers,
        series_uid=uids.sr_series,
        sop_uid=uids.sr,
        tracking_uid=uids.tracking,
        device_uid=uids.device,
    )
    objects = [_bytes(seg), _bytes(sr)]
    if include_pdf:
        with tempfile.TemporaryDirectory(prefix="hemarelay-pdf-") as tmp:
            pdf_path = write_case_pdf(report, ct, mask, Path(tmp) / "report.pdf")
            pdf = pdf_path.read_bytes()
        objects.append(
            _bytes(
                encapsulated_pdf(
                    pdf, headers, series_uid=uids.pdf_series, sop_uid=uids.pdf, title="Hematoma volume report"
                )
            )
        )
    result = SendResult(
        paths.case_id,
        uids,
        source_series,
        str(headers[0].StudyInstanceUID),
        report.volume_ml,
        numbers.abc2_ml,
        len(objects),
        digest,
    )
    return objects, result


def send_case(
    client: PacsClient,
    ct: str | Path,
    *,
    include_pdf: bool | None = None,
    model_version: str = "",
    token: CancelToken = NEVER_CANCELLED,
) -> Generator[Progress, None, SendResult]:
    """Send an approved case (its CT folder ``ct``) to the PACS."""
    paths = case_files(Path(ct))
    check_sendable(paths)
    pdf = client.config.send_pdf if include_pdf is None else include_pdf
    yield Progress(STAGE_BUILD, 0, 2, f"case {paths.case_id}")
    objects, result = build_objects(paths, pdf, model_version)
    token.raise_if_cancelled()
    yield Progress(STAGE_STORE, 1, 2, f"case {paths.case_id}: {len(objects)} objects to {client.config.describe()}")
    client.store(objects)
    yield Progress(STAGE_STORE, 2, 2, f"case {paths.case_id}: sent")
    return result
