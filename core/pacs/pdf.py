"""The PDF volume report as a DICOM Encapsulated PDF in the study of its CT.

The patient and study attributes are copied from the source CT (so the PACS
files it with the study), the source images are listed in the Source Instance
Sequence (so it references the source series), and the UIDs are given by the
caller (:mod:`core.pacs.send` derives them from the approved mask).
"""

from __future__ import annotations

import datetime as _dt

from .. import __version__

ENCAPSULATED_PDF = "1.2.840.10008.5.1.4.1.1.104.1"
_COPIED = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyInstanceUID",
    "StudyDate",
    "StudyTime",
    "StudyID",
    "AccessionNumber",
    "ReferringPhysicianName",
)


def encapsulated_pdf(pdf: bytes, source_headers: list, *, series_uid: str, sop_uid: str, title: str):
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian

    src = source_headers[0]
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ENCAPSULATED_PDF
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds = Dataset()
    ds.file_meta = meta
    for key in _COPIED:
        setattr(ds, key, getattr(src, key, "") if key in src else "")
    now = _dt.datetime.now()
    ds.SOPClassUID = ENCAPSULATED_PDF
    ds.SOPInstanceUID = sop_uid
    ds.Modality = "DOC"
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = 9903
    ds.SeriesDescription = "Hematoma volume report (PDF)"
    ds.InstanceNumber = 1
    ds.ContentDate = now.strftime("%Y%m%d")
    ds.ContentTime = now.strftime("%H%M%S")
    ds.AcquisitionDateTime = now.strftime("%Y%m%d%H%M%S")
    ds.ConversionType = "WSD"
    ds.Manufacturer = "Hematoma Relay"
    ds.SoftwareVersions = __version__
    ds.BurnedInAnnotation = "YES"  # the PDF names the patient
    ds.DocumentTitle = title
    ds.ConceptNameCodeSequence = []
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    ds.EncapsulatedDocument = pdf + (b"\0" if len(pdf) % 2 else b"")
    ds.EncapsulatedDocumentLength = len(pdf)
    refs = []
    for h in source_headers:
        r = Dataset()
        r.ReferencedSOPClassUID = h.SOPClassUID
        r.ReferencedSOPInstanceUID = h.SOPInstanceUID
        refs.append(r)
    ds.SourceInstanceSequence = refs
    return ds
