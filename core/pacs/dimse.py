"""DIMSE (C-FIND, C-GET, C-STORE) through ``pynetdicom``.

Retrieval is C-GET: the images come back on the association this workstation
opened, so the PACS needs no route back to it (C-MOVE would need a port the
PACS connects to). The PACS authorises by AE title: it must list this
workstation's (``calling_ae``). With ``tls`` on, the association runs over
TLS, the PACS's certificate checked against the site's CA file.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
from typing import Iterator

from .client import InstanceRef, SeriesMatch, StudyMatch, StudyQuery, int_or_none
from .config import PacsConfig
from .errors import PacsError

SUCCESS = 0x0000
PENDING = (0xFF00, 0xFF01)


def _text(ds, keyword: str) -> str:
    from ..errors import printable

    value = ds.get(keyword, "") if ds is not None else ""
    if value is None:
        return ""
    if hasattr(value, "__iter__") and not isinstance(value, (str, bytes)) and keyword == "ModalitiesInStudy":
        return "\\".join(str(v) for v in value)
    return printable(str(value)).strip()


class DimseClient:
    def __init__(self, config: PacsConfig) -> None:
        # pynetdicom logs every refused association and abort as errors of its own; ours say it once
        logging.getLogger("pynetdicom").setLevel(logging.CRITICAL)
        self.config = config

    # ----------------------------------------------------------- associations
    def _tls(self):
        if not self.config.tls:
            return None
        try:
            ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self.config.ca_file or None)
        except (OSError, ssl.SSLError) as exc:
            raise PacsError(f"The PACS CA file {self.config.ca_file} cannot be used ({exc}).") from None
        return (ctx, self.config.host)

    def _where(self) -> str:
        return f"{self.config.called_ae} at {self.config.host}:{self.config.port}"

    @contextlib.contextmanager
    def _association(self, contexts, roles=(), handlers=()):
        from pynetdicom import AE

        ae = AE(ae_title=self.config.calling_ae)
        ae.maximum_pdu_size = 0  # accept the PACS's largest PDUs (the default 16 kB costs a third of the speed)
        t = self.config.timeout_s
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = ae.connection_timeout = t
        for cx in contexts:
            ae.add_requested_context(*cx) if isinstance(cx, tuple) else ae.add_requested_context(cx)
        try:
            assoc = ae.associate(
                self.config.host,
                int(self.config.port),
                ae_title=self.config.called_ae,
                ext_neg=list(roles) or None,
                evt_handlers=list(handlers) or None,
                tls_args=self._tls(),
            )
        except (OSError, ValueError) as exc:
            raise PacsError(f"Cannot reach the PACS {self._where()} ({exc}).") from None
        if assoc.is_rejected:
            raise PacsError(
                f"The PACS {self._where()} refused this workstation's association: it must list the AE title "
                f"'{self.config.calling_ae}' (and this computer's address), and its own AE title must be "
                f"'{self.config.called_ae}'."
            )
        if not assoc.is_established:
            tls = (
                " over TLS (is its certificate trusted by the CA file, and does it speak TLS?)"
                if self.config.tls
                else ""
            )
            raise PacsError(f"Cannot reach the PACS {self._where()}{tls}: no association could be opened.")
        try:
            yield assoc
        except BaseException:
            if assoc.is_established:  # cancelled or failed mid-way: stop the PACS's transfer too
                assoc.abort()
            raise
        if assoc.is_established:
            assoc.release()

    def _check_alive(self, assoc, what: str) -> None:
        if assoc.is_aborted or not assoc.is_established:
            raise PacsError(f"The PACS {self._where()} stopped answering while {what} (the association was cut).")

    def _find(self, identifier, what: str) -> list:
        from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind as FIND

        out = []
        with self._association([FIND]) as assoc:
            for status, ident in assoc.send_c_find(identifier, FIND):
                if not status:  # empty status: timeout or abort
                    self._check_alive(assoc, what)
                    raise PacsError(f"The PACS {self._where()} did not answer while {what}.")
                code = int(status.Status)
                if code in PENDING:
                    out.append(ident)
                elif code == SUCCESS:
                    break
                else:
                    raise PacsError(
                        f"The PACS {self._where()} refused the query while {what} (status 0x{code:04X}); "
                        f"is '{self.config.calling_ae}' allowed to query it?"
                    )
        return out

    # ----------------------------------------------------------- queries
    def find_studies(self, query: StudyQuery) -> list[StudyMatch]:
        from pydicom import Dataset

        query = query.validated()
        ds = Dataset()
        ds.QueryRetrieveLevel = "STUDY"
        ds.StudyInstanceUID = ""
        ds.PatientID = query.patient_id
        ds.PatientName = ""
        ds.AccessionNumber = query.accession_number
        ds.StudyDate = query.date_range()
        ds.StudyDescription = ""
        ds.ModalitiesInStudy = query.modality
        ds.NumberOfStudyRelatedSeries = ""
        ds.NumberOfStudyRelatedInstances = ""
        found = self._find(ds, "searching for studies")[: query.limit]
        return [
            StudyMatch(
                _text(f, "StudyInstanceUID"),
                _text(f, "PatientID"),
                _text(f, "PatientName").replace("^", " ").strip(),
                _text(f, "StudyDate"),
                _text(f, "AccessionNumber"),
                _text(f, "StudyDescription"),
                tuple(m for m in _text(f, "ModalitiesInStudy").split("\\") if m),
                int_or_none(_text(f, "NumberOfStudyRelatedSeries")),
                int_or_none(_text(f, "NumberOfStudyRelatedInstances")),
            )
            for f in found
        ]

    def find_series(self, study_uid: str) -> list[SeriesMatch]:
        from pydicom import Dataset

        ds = Dataset()
        ds.QueryRetrieveLevel = "SERIES"
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = ""
        ds.Modality = ""
        ds.SeriesDescription = ""
        ds.SeriesNumber = ""
        ds.NumberOfSeriesRelatedInstances = ""
        return [
            SeriesMatch(
                study_uid,
                _text(f, "SeriesInstanceUID"),
                _text(f, "Modality").upper(),
                _text(f, "SeriesDescription"),
                _text(f, "SeriesNumber"),
                int_or_none(_text(f, "NumberOfSeriesRelatedInstances")),
            )
            for f in self._find(ds, "listing the study's series")
        ]

    def list_instances(self, study_uid: str, series_uid: str) -> list[InstanceRef]:
        from pydicom import Dataset

        ds = Dataset()
        ds.QueryRetrieveLevel = "IMAGE"
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.SOPInstanceUID = ""
        ds.InstanceNumber = ""
        return [
            InstanceRef(_text(f, "SOPInstanceUID"), int_or_none(_text(f, "InstanceNumber")))
            for f in self._find(ds, "listing the series' images")
        ]

    # ----------------------------------------------------------- retrieve
    def fetch(
        self, study_uid: str, series_uid: str, sop_uids: list[str], whole_series: bool = False
    ) -> Iterator[tuple[str, bytes]]:
        """C-GET on one association: the whole series in one request, or one request per
        image; each image is handed on as it arrives, so an interruption keeps every image
        before it."""
        from pydicom import Dataset
        from pydicom import uid as U
        from pynetdicom import build_role, evt
        from pynetdicom.sop_class import CTImageStorage, EnhancedCTImageStorage
        from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelGet as GET

        received: list[tuple[str, bytes]] = []

        def on_store(event) -> int:
            received.append((str(event.request.AffectedSOPInstanceUID), event.encoded_dataset(include_meta=True)))
            return SUCCESS

        storage = (CTImageStorage, EnhancedCTImageStorage)
        # every syntax the DICOM reader (GDCM in SimpleITK) decodes: the PACS sends images as it holds them
        syntaxes = [
            *U.UncompressedTransferSyntaxes,
            *U.JPEGTransferSyntaxes,
            *U.JPEGLSTransferSyntaxes,
            *U.JPEG2000TransferSyntaxes,
            *U.RLETransferSyntaxes,
        ]
        contexts = [GET, *((s, syntaxes) for s in storage)]
        roles = [build_role(s, scp_role=True) for s in storage]
        what = "downloading images"
        requests = [None] if whole_series else list(sop_uids)
        with self._association(contexts, roles, [(evt.EVT_C_STORE, on_store)]) as assoc:
            for sop in requests:
                self._check_alive(assoc, what)
                ds = Dataset()
                ds.QueryRetrieveLevel = "SERIES" if sop is None else "IMAGE"
                ds.StudyInstanceUID = study_uid
                ds.SeriesInstanceUID = series_uid
                if sop is not None:
                    ds.SOPInstanceUID = sop
                final = None
                got = 0
                for status, _ident in assoc.send_c_get(ds, GET):
                    if not status:
                        self._check_alive(assoc, what)
                        raise PacsError(f"The PACS {self._where()} did not answer while {what}.")
                    final = int(status.Status)
                    while received:  # pending responses come after each image: hand it on now
                        got += 1
                        yield received.pop(0)
                self._check_alive(assoc, what)
                while received:
                    got += 1
                    yield received.pop(0)
                if final not in (SUCCESS, 0xB000) or not got:
                    raise PacsError(
                        f"The PACS {self._where()} did not send {'the series' if sop is None else 'image ' + sop} "
                        f"(status 0x{(final or 0):04X}); is '{self.config.calling_ae}' allowed to retrieve from it?"
                    )

    # ----------------------------------------------------------- store
    def store(self, files: list[bytes]) -> None:
        import io

        import pydicom
        from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

        datasets = [pydicom.dcmread(io.BytesIO(b)) for b in files]
        classes = sorted({str(d.SOPClassUID) for d in datasets})
        contexts = [(c, [ExplicitVRLittleEndian, ImplicitVRLittleEndian]) for c in classes]
        with self._association(contexts) as assoc:
            for d in datasets:
                status = assoc.send_c_store(d)
                if not status:
                    self._check_alive(assoc, "storing the results")
                    raise PacsError(f"The PACS {self._where()} did not answer while storing the results.")
                code = int(status.Status)
                if code not in (SUCCESS, 0xB000, 0xB007, 0xB006):
                    raise PacsError(
                        f"The PACS {self._where()} refused to store a {d.Modality} object (status 0x{code:04X}); "
                        f"is '{self.config.calling_ae}' allowed to store on it?"
                    )

    def close(self) -> None:
        pass
