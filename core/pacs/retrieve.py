"""A CT series from the PACS into the worklist: a case like any DICOM folder.

The images are downloaded into a hidden staging folder beside the cases
(``.pacs-staging/<case id>/``), each written atomically, then checked (every
image is CT of that series, none missing, the series reads as one volume the
way :func:`core.io.load_ct` reads a DICOM folder, tilt correction included) and
only then moved into place as ``ct_<case id>/`` in one rename. An interrupted
retrieve (cancel, a server that stops, a crash) leaves only the staging
folder, and the next retrieve of the series downloads just the images still
missing. The worklist never shows a half-written case.

Where: the site's worklist folder, or its ``pacs/`` sub-folder when the folder
is laid out in sub-folders (``train/``, ``test/``...), since the worklist
lists either the cases of a folder or those of its sub-folders.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Generator

from ..cases.case_files import RETRIEVED_RECORD, case_files
from ..cases.datasets import list_cases
from ..errors import HemaRelayError, InputError
from ..io import atomic_write_bytes, atomic_write_text, load_ct
from ..progress import NEVER_CANCELLED, CancelToken, EtaClock, Progress
from .client import PacsClient, SeriesMatch
from .errors import PacsDataError, PacsError
from .uids import case_id_for_series

STAGING = ".pacs-staging"
PACS_SUBFOLDER = "pacs"
RECORD = RETRIEVED_RECORD  # inside the case folder: where the series came from (its files go beside it)
STAGE_FIND = "Finding the series"
STAGE_DOWNLOAD = "Downloading"
STAGE_CHECK = "Checking the series"
MB = 1_000_000


@dataclass(frozen=True)
class RetrieveProgress(Progress):
    bytes_done: int = 0
    images_done: int = 0


@dataclass(frozen=True)
class RetrieveResult:
    case_id: str
    ct: Path  # the case's DICOM folder (ct_<id>/)
    series: SeriesMatch
    n_images: int
    n_bytes: int  # bytes downloaded by this call
    resumed: int  # images already staged by an earlier, interrupted retrieve
    already_present: bool = False  # the case was in the worklist already: nothing downloaded
    seconds: float = 0.0
    note: str = ""  # how the series reads (resampled for tilt, ...)

    def text(self) -> str:
        if self.already_present:
            return f"Case {self.case_id} is already in the worklist ({self.ct}); nothing was downloaded."
        rate = f", {self.n_bytes / MB / self.seconds:.1f} MB/s" if self.seconds > 0 and self.n_bytes else ""
        resumed = f" ({self.resumed} kept from an interrupted retrieve)" if self.resumed else ""
        return (
            f"Case {self.case_id}: {self.n_images} images{resumed}, "
            f"{self.n_bytes / MB:.1f} MB in {self.seconds:.1f} s{rate} -> {self.ct}"
            + (f". {self.note}" if self.note else "")
        )


def cases_folder(worklist_folder: str | Path) -> Path:
    """Where retrieved cases go in this worklist folder (see the module's note)."""
    folder = Path(worklist_folder).expanduser()
    if not folder.is_dir():
        raise InputError(f"{folder}: the worklist folder does not exist.")
    if list_cases(folder):
        return folder
    subs = [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".") and p.name != PACS_SUBFOLDER]
    if any(list_cases(p) for p in subs):
        return folder / PACS_SUBFOLDER
    return folder


def choose_series(client: PacsClient, study_uid: str, series_uid: str = "") -> SeriesMatch:
    """The asked series (refused unless CT), or the study's CT series with most images."""
    series = client.find_series(study_uid)
    if not series:
        raise PacsDataError(f"Study {study_uid} has no series on the PACS; nothing was retrieved.")
    if series_uid:
        match = next((s for s in series if s.series_uid == series_uid), None)
        if match is None:
            raise PacsDataError(f"Series {series_uid} is not in study {study_uid} on the PACS.")
        if match.modality != "CT":
            raise PacsDataError(
                f"Series {match.number or '?'} '{match.description}' is {match.modality or 'of unknown modality'}, "
                "not CT; only CT series become cases. Nothing was retrieved."
            )
        return match
    cts = [s for s in series if s.modality == "CT"]
    if not cts:
        found = ", ".join(sorted({s.modality or "unknown" for s in series}))
        raise PacsDataError(f"Study {study_uid} has no CT series (it holds {found}); nothing was retrieved.")
    return max(cts, key=lambda s: s.n_instances or 0)


def _file_name(sop_uid: str) -> str:
    return hashlib.sha256(sop_uid.encode()).hexdigest()[:24] + ".dcm"


def _missing_numbers(numbers: list[int]) -> list[int]:
    if not numbers:
        return []
    present = set(numbers)
    return [n for n in range(min(numbers), max(numbers) + 1) if n not in present]


def _check_instances(series: SeriesMatch, refs) -> None:
    if not refs:
        raise PacsDataError(f"Series {series.number or series.series_uid} holds no images on the PACS.")
    numbers = [r.instance_number for r in refs if r.instance_number is not None]
    if len(numbers) == len(refs):
        holes = _missing_numbers(numbers)
        if holes:
            shown = ", ".join(str(n) for n in holes[:8]) + (", ..." if len(holes) > 8 else "")
            raise PacsDataError(
                f"Series {series.number or '?'} '{series.description}' on the PACS lacks slices: image number(s) "
                f"{shown} of {min(numbers)} to {max(numbers)} are missing. A volume with missing slices would "
                "measure wrong; nothing was added to the worklist (ask for the complete series)."
            )
        if len(set(numbers)) != len(numbers):
            raise PacsDataError(
                f"Series {series.number or '?'} '{series.description}' repeats image numbers "
                "(several acquisitions in one series?); nothing was added to the worklist."
            )


def _verify_staged(stage: Path, series: SeriesMatch, expected: set[str]) -> str:
    """Every staged image is a CT image of ``series``, all expected ones are there,
    and the folder reads as one CT volume. Returns the reading note."""
    import pydicom

    seen = set()
    for f in sorted(stage.glob("*.dcm")):
        try:
            ds = pydicom.dcmread(str(f), stop_before_pixels=True)
        except Exception as exc:  # noqa: BLE001 - pydicom raises many kinds for a damaged file
            f.unlink(missing_ok=True)  # fetched again on the next try
            raise PacsDataError(f"An image from the PACS is damaged ({exc}); run the retrieve again.") from None
        if str(getattr(ds, "SeriesInstanceUID", "")) != series.series_uid:
            raise PacsDataError("The PACS sent an image of another series; nothing was added to the worklist.")
        if str(getattr(ds, "Modality", "")).upper() != "CT":
            raise PacsDataError(
                f"The PACS sent a {getattr(ds, 'Modality', 'non-CT')} image in this series; only CT becomes a case."
            )
        seen.add(str(ds.SOPInstanceUID))
    if seen != expected:
        raise PacsDataError(
            f"{len(expected - seen)} image(s) of the series did not arrive; run the retrieve again to fetch them."
        )
    try:
        ct = load_ct(stage)
    except HemaRelayError as exc:
        raise PacsDataError(f"The series cannot be read as one CT volume: {exc}") from None
    return " ".join(ct.notes)


def staging_folder(target: Path, case_id: str) -> Path:
    return target / STAGING / case_id


def retrieve_series(
    client: PacsClient,
    study_uid: str,
    worklist_folder: str | Path,
    series_uid: str = "",
    token: CancelToken = NEVER_CANCELLED,
) -> Generator[Progress, None, RetrieveResult]:
    """Retrieve one CT series (``series_uid``, or the study's largest CT series) as a case."""
    t0 = time.monotonic()
    cfg = client.config
    yield Progress(STAGE_FIND, 0, 0, f"study {study_uid}")
    series = choose_series(client, study_uid, series_uid)
    target = cases_folder(worklist_folder)
    cid = case_id_for_series(series.series_uid)
    final = target / f"ct_{cid}"
    if final.exists():
        return RetrieveResult(cid, final, series, len(list(final.glob("*.dcm"))), 0, 0, already_present=True)
    refs = client.list_instances(study_uid, series.series_uid)
    _check_instances(series, refs)
    stage = staging_folder(target, cid)
    try:
        stage.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{stage}: cannot write in the worklist folder ({exc.strerror or exc}).") from None
    names = {r.sop_uid: _file_name(r.sop_uid) for r in refs}
    have = {sop for sop, name in names.items() if (stage / name).is_file()}
    todo = [r.sop_uid for r in sorted(refs, key=lambda r: (r.instance_number or 0, r.sop_uid)) if r.sop_uid not in have]
    total = len(refs)
    staged_bytes = sum((stage / names[s]).stat().st_size for s in have)
    limit = cfg.max_study_mb * MB
    clock = EtaClock()
    done_bytes = 0
    done = len(have)
    label = f"series {series.number or '?'} '{series.description}'"

    def over_limit(per_image: float) -> PacsDataError:
        return PacsDataError(
            f"The {label} is about {per_image * total / MB:.0f} MB ({total} images), over this site's limit of "
            f"{cfg.max_study_mb:g} MB for one retrieve; nothing was added to the worklist (raise the limit in the "
            "PACS settings to retrieve it)."
        )

    if have and staged_bytes / len(have) * total > limit:
        raise over_limit(staged_bytes / len(have))
    yield RetrieveProgress(STAGE_DOWNLOAD, done, total, f"{label}: {done} of {total} images", images_done=done)
    try:
        for sop, data in client.fetch(study_uid, series.series_uid, todo, whole_series=not have):
            token.raise_if_cancelled()
            if sop not in names:
                raise PacsDataError("The PACS sent an image that is not in the series; nothing was added.")
            if (stage / names[sop]).is_file():  # sent twice: keep the first
                continue
            if not have and done == 0 and len(data) * total > limit:  # judged on the first image, before the rest
                raise over_limit(len(data))
            atomic_write_bytes(stage / names[sop], data)
            done += 1
            done_bytes += len(data)
            if staged_bytes + done_bytes > limit * 1.05:  # images of very different sizes: the running total
                raise over_limit((staged_bytes + done_bytes) / done)
            yield RetrieveProgress(
                STAGE_DOWNLOAD,
                done,
                total,
                f"{label}: {done} of {total} images, {(staged_bytes + done_bytes) / MB:.1f} MB",
                clock.eta(done - len(have), total - len(have)),
                bytes_done=done_bytes,
                images_done=done,
            )
        if done < total:  # a streamed answer that ended early, without an error of its own
            raise PacsError(f"The PACS {cfg.describe()} stopped sending in the middle of the series.")
    except PacsError as exc:
        raise PacsError(
            f"{exc} {done} of {total} images are kept aside (not in the worklist); run the retrieve again to "
            "fetch the rest."
        ) from None
    token.raise_if_cancelled()
    yield Progress(STAGE_CHECK, total, total, label)
    note = _verify_staged(stage, series, set(names))
    record = {
        "study_uid": study_uid,
        "series_uid": series.series_uid,
        "server": cfg.describe(),
        "retrieved_at": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
    }
    atomic_write_text(stage / RECORD, json.dumps(record, indent=2) + "\n")
    token.raise_if_cancelled()
    try:
        os.rename(stage, final)  # one step: the case appears complete or not at all
    except OSError as exc:
        raise InputError(f"{final}: the case could not be put in place ({exc.strerror or exc}).") from None
    with contextlib.suppress(OSError):
        stage.parent.rmdir()  # only when no other retrieve is staged
    return RetrieveResult(cid, final, series, total, done_bytes, len(have), seconds=time.monotonic() - t0, note=note)


def pacs_record(ct: str | Path) -> dict | None:
    """Where a retrieved case came from (study and series UIDs, server), or None."""
    try:
        return json.loads((Path(ct) / RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def discard_staging(worklist_folder: str | Path, case_id: str) -> None:
    """Drop an interrupted retrieve's images (the next retrieve starts over)."""
    shutil.rmtree(staging_folder(cases_folder(worklist_folder), case_id), ignore_errors=True)


def case_of(result: RetrieveResult):
    """The case's files (CT folder, mask beside it, ...)."""
    return case_files(result.ct)
