"""Test data for the PACS tests: a CT-ICH case (NIfTI) written as a DICOM CT series,
and a mask carried from the NIfTI grid onto the grid a DICOM folder opens as.

The series has one file per axial slice with its true geometry (position,
orientation, pixel spacing from the NIfTI affine, in DICOM's LPS), CT Image
Storage, int16 HU, and the patient/study attributes a PACS files it by. Options
make the bad data of the tests: another modality, or slices left out.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

_LPS = np.diag([-1.0, -1.0, 1.0])
CT_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
MR_STORAGE = "1.2.840.10008.5.1.4.1.1.4"


def series_from_nifti(
    ct_path: Path,
    *,
    patient_id: str = "CTICH-052",
    modality: str = "CT",
    skip: tuple[int, ...] = (),
    study_date: str = "20240115",
    accession: str = "ACC052",
    tag: str = "",
) -> list[bytes]:
    """The DICOM files (bytes) of a NIfTI CT, one per slice k, instance number k + 1."""
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    from core.io import load_ct

    ct = load_ct(ct_path)
    a = ct.affine
    data = np.asarray(ct.data).astype(np.int16)
    col_sp, row_sp = float(np.linalg.norm(a[:3, 0])), float(np.linalg.norm(a[:3, 1]))
    row_dir = _LPS @ (a[:3, 0] / col_sp)  # along increasing column index (i)
    col_dir = _LPS @ (a[:3, 1] / row_sp)  # along increasing row index (j)
    seed = [str(ct_path), modality, tag]
    study_uid = generate_uid(entropy_srcs=[*seed, "study"])
    series_uid = generate_uid(entropy_srcs=[*seed, "series"])
    frame_uid = generate_uid(entropy_srcs=[*seed, "frame"])
    sop_class = CT_STORAGE if modality == "CT" else MR_STORAGE
    out = []
    for k in range(data.shape[2]):
        if k in skip:
            continue
        sop = generate_uid(entropy_srcs=[*seed, "sop", str(k)])
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = sop_class
        meta.MediaStorageSOPInstanceUID = sop
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = sop_class, sop
        ds.PatientName, ds.PatientID = "CTICH^Case052", patient_id
        ds.PatientBirthDate, ds.PatientSex = "", "O"
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study_uid, series_uid, frame_uid
        ds.StudyDate, ds.StudyTime, ds.StudyID, ds.AccessionNumber = study_date, "101500", "1", accession
        ds.ReferringPhysicianName = ""
        ds.StudyDescription = "CT HEAD"
        ds.Modality, ds.SeriesNumber, ds.SeriesDescription = modality, 2, "HEAD 5mm"
        ds.Manufacturer = "test"
        ds.InstanceNumber = k + 1
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.PositionReferenceIndicator = ""
        ds.ImagePositionPatient = [float(x) for x in _LPS @ (a @ np.array([0.0, 0.0, k, 1.0]))[:3]]
        ds.ImageOrientationPatient = [float(x) for x in (*row_dir, *col_dir)]
        ds.PixelSpacing = [row_sp, col_sp]
        ds.SliceThickness = float(np.linalg.norm(a[:3, 2]))
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.Rows, ds.Columns = data.shape[1], data.shape[0]
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = 0, 1, "HU"
        ds.KVP, ds.AcquisitionNumber = 120, 1
        ds.PixelData = np.ascontiguousarray(data[:, :, k].T).tobytes()  # [row=j, col=i]
        buf = io.BytesIO()
        pydicom.dcmwrite(buf, ds, enforce_file_format=True)
        out.append(buf.getvalue())
    return out


def write_files(files: list[bytes], folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for n, b in enumerate(files):
        (folder / f"{n + 1:04d}.dcm").write_bytes(b)
    return folder


def mask_onto(mask_path: Path, mask_grid_ct: Path, target):
    """The mask of ``mask_path`` (on the NIfTI CT's grid) on ``target``'s grid (a Volume that
    covers the same voxels in world space: the DICOM folder of the same CT), nearest voxel."""
    from scipy import ndimage

    from core.io import load_ct, load_mask

    src = load_mask(mask_path, load_ct(mask_grid_ct))
    m = np.linalg.inv(src.affine) @ target.affine  # target voxel -> source voxel
    out = ndimage.affine_transform(
        np.asarray(src.data, np.uint8), m[:3, :3], m[:3, 3], output_shape=target.shape, order=0, cval=0
    )
    return out.astype(np.uint8)
