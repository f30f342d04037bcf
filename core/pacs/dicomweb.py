"""DICOMweb (QIDO-RS, WADO-RS, STOW-RS) through ``dicomweb-client``.

HTTP basic authentication when the site gives a user name, https checked
against the site's CA file (or the system's CAs), a timeout on every request.
Every failure becomes a :class:`PacsError` naming what went wrong in words.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Iterator

from ..errors import printable
from .client import InstanceRef, SeriesMatch, StudyMatch, StudyQuery, int_or_none
from .config import PacsConfig
from .errors import PacsError

_STUDY_FIELDS = [
    "PatientName",
    "PatientID",
    "StudyDate",
    "AccessionNumber",
    "StudyDescription",
    "ModalitiesInStudy",
    "NumberOfStudyRelatedSeries",
    "NumberOfStudyRelatedInstances",
]
_SERIES_FIELDS = ["Modality", "SeriesDescription", "SeriesNumber", "NumberOfSeriesRelatedInstances"]


def _value(item: dict, keyword: str) -> str:
    """A DICOM JSON attribute's first value as text ("" when absent)."""
    from pydicom.datadict import tag_for_keyword

    tag = tag_for_keyword(keyword)
    entry = item.get(f"{tag:08X}") if tag is not None else None
    values = (entry or {}).get("Value") or []
    if not values:
        return ""
    v = values[0]
    if isinstance(v, dict):  # PN: {"Alphabetic": "DOE^JOHN"}
        v = v.get("Alphabetic", "")
    return printable(str(v)).strip()


def _values(item: dict, keyword: str) -> tuple[str, ...]:
    from pydicom.datadict import tag_for_keyword

    entry = item.get(f"{tag_for_keyword(keyword):08X}") or {}
    return tuple(printable(str(v)).strip() for v in entry.get("Value") or [])


def _session(ca_file: str):
    import requests

    class Session(requests.Session):
        """requests lets $REQUESTS_CA_BUNDLE override a session's CA file; the site's
        CA file must win (proxies and the rest of the environment still apply)."""

        def merge_environment_settings(self, url, proxies, stream, verify, cert):
            merged = super().merge_environment_settings(url, proxies, stream, verify, cert)
            if ca_file:
                merged["verify"] = ca_file
            return merged

    return Session()


class DicomwebClient:
    def __init__(self, config: PacsConfig, password: str | None) -> None:
        from dicomweb_client.api import DICOMwebClient

        self.config = config
        self.session = _session(str(Path(config.ca_file).expanduser()) if config.ca_file else "")
        if config.username:
            self.session.auth = (config.username, password or "")
        self.api = DICOMwebClient(url=config.url.rstrip("/"), session=self.session, timeout=config.timeout_s)
        # no silent retries with back-off (minutes on a dead server): fail at once, resume on the next try
        self.api.set_http_retry_params(retry=False)

    def _fail(self, exc: BaseException, what: str) -> PacsError:
        """The one translation of a library's failure into a message."""
        import requests

        where = self.config.url
        if isinstance(exc, requests.exceptions.SSLError):
            return PacsError(
                f"The PACS at {where} presented a TLS certificate that is not trusted ({_short(exc)}); "
                "set the CA file of the hospital's certificate authority in the PACS settings."
            )
        if isinstance(exc, requests.exceptions.HTTPError) and exc.response is not None:
            code = exc.response.status_code
            if code in (401, 403):
                return PacsError(
                    f"The PACS at {where} refused the user name or password (HTTP {code}) while {what}; "
                    "check them in the PACS settings."
                )
            return PacsError(f"The PACS at {where} answered HTTP {code} ({exc.response.reason}) while {what}.")
        if isinstance(exc, requests.exceptions.Timeout):
            return PacsError(f"The PACS at {where} did not answer within {self.config.timeout_s:g} s while {what}.")
        if isinstance(exc, (requests.exceptions.ConnectionError, ConnectionError)):
            return PacsError(f"Cannot reach the PACS at {where} while {what} (the connection failed or was cut).")
        return PacsError(f"The PACS at {where} sent something unusable while {what} ({_short(exc)}).")

    @contextlib.contextmanager
    def _calling(self, what: str):
        import requests

        try:
            yield
        except PacsError:
            raise
        except (requests.exceptions.RequestException, ConnectionError, ValueError, KeyError, TypeError) as exc:
            raise self._fail(exc, what) from None

    def find_studies(self, query: StudyQuery) -> list[StudyMatch]:
        query = query.validated()
        filters = {}
        if query.patient_id:
            filters["PatientID"] = query.patient_id
        if query.accession_number:
            filters["AccessionNumber"] = query.accession_number
        if query.date_range():
            filters["StudyDate"] = query.date_range()
        if query.modality:
            filters["ModalitiesInStudy"] = query.modality
        with self._calling("searching for studies"):
            found = self.api.search_for_studies(search_filters=filters, fields=_STUDY_FIELDS, limit=query.limit)
        return [
            StudyMatch(
                _value(s, "StudyInstanceUID"),
                _value(s, "PatientID"),
                _value(s, "PatientName").replace("^", " ").strip(),
                _value(s, "StudyDate"),
                _value(s, "AccessionNumber"),
                _value(s, "StudyDescription"),
                _values(s, "ModalitiesInStudy"),
                int_or_none(_value(s, "NumberOfStudyRelatedSeries")),
                int_or_none(_value(s, "NumberOfStudyRelatedInstances")),
            )
            for s in found or []
        ]

    def find_series(self, study_uid: str) -> list[SeriesMatch]:
        with self._calling("listing the study's series"):
            found = self.api.search_for_series(study_instance_uid=study_uid, fields=_SERIES_FIELDS)
        return [
            SeriesMatch(
                study_uid,
                _value(s, "SeriesInstanceUID"),
                _value(s, "Modality").upper(),
                _value(s, "SeriesDescription"),
                _value(s, "SeriesNumber"),
                int_or_none(_value(s, "NumberOfSeriesRelatedInstances")),
            )
            for s in found or []
        ]

    def list_instances(self, study_uid: str, series_uid: str) -> list[InstanceRef]:
        with self._calling("listing the series' images"):
            found = self.api.search_for_instances(
                study_instance_uid=study_uid, series_instance_uid=series_uid, fields=["InstanceNumber"]
            )
        return [InstanceRef(_value(i, "SOPInstanceUID"), int_or_none(_value(i, "InstanceNumber"))) for i in found or []]

    def fetch(
        self, study_uid: str, series_uid: str, sop_uids: list[str], whole_series: bool = False
    ) -> Iterator[tuple[str, bytes]]:
        if whole_series:  # one streamed multipart response for the series
            with self._calling("downloading images"):
                stream = self.api.iter_series(study_instance_uid=study_uid, series_instance_uid=series_uid)
                for ds in _guarded(stream, self, "downloading images"):
                    yield str(ds.SOPInstanceUID), _encoded(ds)
            return
        for sop in sop_uids:
            with self._calling("downloading images"):
                ds = self.api.retrieve_instance(
                    study_instance_uid=study_uid, series_instance_uid=series_uid, sop_instance_uid=sop
                )
                data = _encoded(ds)
            yield sop, data

    def store(self, files: list[bytes]) -> None:
        import pydicom

        datasets = [pydicom.dcmread(io.BytesIO(b)) for b in files]
        with self._calling("storing the results"):
            result = self.api.store_instances(datasets=datasets)
        failed = getattr(result, "FailedSOPSequence", None)
        if failed:
            raise PacsError(
                f"The PACS at {self.config.url} refused {len(failed)} of {len(files)} object(s) "
                f"(failure reason {getattr(failed[0], 'FailureReason', '?')})."
            )

    def close(self) -> None:
        self.session.close()


def _encoded(ds) -> bytes:
    import pydicom

    buf = io.BytesIO()
    pydicom.dcmwrite(buf, ds, enforce_file_format=True)
    return buf.getvalue()


def _guarded(stream, client: "DicomwebClient", what: str):
    """A streamed response whose failures mid-way become PacsError too (the generator is
    resumed outside the ``with`` that wraps its creation)."""
    import requests

    while True:
        try:
            ds = next(stream)
        except StopIteration:
            return
        except (requests.exceptions.RequestException, ConnectionError, ValueError, KeyError, TypeError) as exc:
            raise client._fail(exc, what) from None
        yield ds


def _short(exc: BaseException) -> str:
    text = printable(str(exc)).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:160]
