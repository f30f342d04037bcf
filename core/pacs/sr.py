"""The hematoma's numbers as a DICOM structured report: TID 1500 (Measurement
Report) in a Comprehensive 3D SR, written with highdicom.

One volumetric measurement group for the hematoma, tracked as "hematoma",
referencing segment 1 of the SEG sent with it (and through it the source CT
series), finding "Hemorrhage" in the brain, with:

- the planimetric volume (mL; method "sum of segmented voxel volumes"),
- the ABC/2 estimate (mL; a private method code: ABC/2 has no standard one),
- the first and last axial slices holding hematoma (numbered from 1 as in the
  viewer and the PDF), the number of slices and the largest area (cm2).

The software version is the SR's SoftwareVersions, the model version an
algorithm parameter of each measurement and the device observer's model name,
the reviewer the person observer. PACS viewers list it as a report; 3D Slicer's
quantitative reporting reads it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

from .. import __version__
from ..errors import InputError

# DICOM lets a site use "99"-prefixed coding schemes for concepts no standard codes.
PRIVATE_SCHEME = "99HEMARELAY"
ABC2_METHOD = ("ABC2", PRIVATE_SCHEME, "ABC/2 ellipsoid estimate (Kothari 1996)")
FIRST_SLICE = ("FIRSTSLICE", PRIVATE_SCHEME, "First axial slice with hematoma")
LAST_SLICE = ("LASTSLICE", PRIVATE_SCHEME, "Last axial slice with hematoma")
N_SLICES = ("NSLICES", PRIVATE_SCHEME, "Axial slices with hematoma")
LARGEST_AREA = ("LARGESTAREA", PRIVATE_SCHEME, "Largest hematoma area on one axial slice")
DEVICE_NAME = "Hematoma Relay"


@dataclass(frozen=True)
class HematomaNumbers:
    """What the report states (from :func:`core.reports.case.measure_case`)."""

    volume_ml: float
    abc2_ml: float | None  # None when ABC/2 is off by more than 2x (core.reports.case): not reported
    first_slice: int  # 1-based, as the viewer numbers them
    last_slice: int
    n_slices: int
    largest_area_cm2: float
    model_version: str  # the model that made or helped the mask ("" when none recorded)
    reviewer: str  # who reviewed / approved the mask


def build_sr(
    numbers: HematomaNumbers,
    seg,  # the highdicom/pydicom SEG dataset being sent with it
    source_headers: list,  # the source CT images' headers (evidence)
    *,
    series_uid: str,
    sop_uid: str,
    tracking_uid: str,
    device_uid: str,
):
    import highdicom as hd
    from pydicom.sr.codedict import codes
    from pydicom.sr.coding import Code

    algorithm = hd.sr.AlgorithmIdentification(
        name=DEVICE_NAME,
        version=__version__,
        parameters=[f"model: {numbers.model_version or 'not recorded'}"],
    )
    ml = Code("mL", "UCUM", "milliliter")
    slice_unit = Code("{slice}", "UCUM", "slice")

    def measure(name, value, unit, method=None):
        return hd.sr.Measurement(name=name, value=float(value), unit=unit, method=method, algorithm_id=algorithm)

    measurements = [
        measure(codes.SCT.Volume, round(numbers.volume_ml, 3), ml, codes.DCM.SumOfSegmentedVoxelMethodForVolume),
        measure(Code(*N_SLICES), numbers.n_slices, slice_unit),
        measure(Code(*LARGEST_AREA), round(numbers.largest_area_cm2, 3), Code("cm2", "UCUM", "square centimeter")),
    ]
    if numbers.abc2_ml is not None:  # an estimate beside the measured volume, only when it agrees
        measurements.insert(1, measure(codes.SCT.Volume, round(numbers.abc2_ml, 3), ml, Code(*ABC2_METHOD)))
    if numbers.n_slices:
        measurements[-2:-2] = [
            measure(Code(*FIRST_SLICE), numbers.first_slice, slice_unit),
            measure(Code(*LAST_SLICE), numbers.last_slice, slice_unit),
        ]
    group = hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=tracking_uid, identifier="hematoma"),
        referenced_segment=hd.sr.ReferencedSegment(
            sop_class_uid=str(seg.SOPClassUID),
            sop_instance_uid=str(seg.SOPInstanceUID),
            segment_number=1,
            source_series=hd.sr.SourceSeriesForSegmentation(str(source_headers[0].SeriesInstanceUID)),
        ),
        finding_type=codes.SCT.Hemorrhage,
        finding_sites=[hd.sr.FindingSite(codes.SCT.Brain)],
        measurements=measurements,
    )
    device = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=device_uid,
            name=DEVICE_NAME,
            manufacturer_name=DEVICE_NAME,
            model_name=(numbers.model_version or "no model recorded")[:64],
        ),
    )
    person = hd.sr.ObserverContext(
        observer_type=codes.DCM.Person,
        observer_identifying_attributes=hd.sr.PersonObserverIdentifyingAttributes(name=_person(numbers.reviewer)),
    )
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_person_context=person, observer_device_context=device),
        procedure_reported=codes.LN.HeadCT,
        imaging_measurements=[group],
        title=codes.cid7021.ImagingMeasurementReport,
    )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # single-component person names
            sr = hd.sr.Comprehensive3DSR(
                evidence=[*source_headers, seg],
                content=report,
                series_instance_uid=series_uid,
                series_number=9902,
                sop_instance_uid=sop_uid,
                instance_number=1,
                manufacturer=DEVICE_NAME,
                is_complete=True,
                is_final=False,  # verified by the reviewer in the application, not signed in the PACS
                series_description="Hematoma volume report",
            )
    except (ValueError, TypeError, AttributeError) as exc:
        raise InputError(f"The structured report could not be built ({exc}).") from None
    sr.SoftwareVersions = __version__
    sr.CodingSchemeIdentificationSequence = [_private_scheme()]
    return sr


def _private_scheme():
    """Declares the private coding scheme (PS3.3 C.12.1.1.2.1) so readers know whose codes they are."""
    from pydicom.dataset import Dataset

    d = Dataset()
    d.CodingSchemeDesignator = PRIVATE_SCHEME
    d.CodingSchemeName = "Hematoma Relay measurement codes"
    d.CodingSchemeResponsibleOrganization = "Hematoma Relay"
    return d


def _person(user: str) -> str:
    """A user name as a DICOM person name: one component is the family name ("smith^")."""
    name = (user or "unknown").strip()[:60]
    return name if "^" in name else name + "^"


@dataclass(frozen=True)
class ReadBack:
    """What an SR states, read back (tests; what a PACS viewer would show)."""

    volume_ml: float
    abc2_ml: float | None
    first_slice: int | None
    last_slice: int | None
    referenced_seg_uid: str
    source_series_uid: str
    model_parameter: str


def read_sr(ds) -> ReadBack:
    """Parse a report this module wrote (highdicom's TID 1500 parser)."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    sr = hd.sr.Comprehensive3DSR.from_dataset(ds) if not hasattr(ds, "content") else ds
    groups = sr.content.get_volumetric_roi_measurement_groups(tracking_uid=None)
    if len(groups) != 1:
        raise InputError(f"expected one hematoma measurement group, found {len(groups)}.")
    g = groups[0]
    volume = abc2 = None
    first = last = None
    param = ""
    for m in g.get_measurements():
        method = m.method.value if m.method is not None else ""
        if m.name == codes.SCT.Volume and method == ABC2_METHOD[0]:
            abc2 = m.value
        elif m.name == codes.SCT.Volume:
            volume = m.value
        elif m.name.value == FIRST_SLICE[0]:
            first = int(m.value)
        elif m.name.value == LAST_SLICE[0]:
            last = int(m.value)
        if not param:
            param = _text_item(m, "111002")  # DCM "Algorithm Parameters"
    seg_ref = g.referenced_segment
    source = seg_ref.source_series_for_segmentation if seg_ref is not None else None
    return ReadBack(
        float(volume),
        None if abc2 is None else float(abc2),
        first,
        last,
        str(seg_ref.referenced_sop_instance_uid) if seg_ref is not None else "",
        str(source.value) if source is not None else "",
        str(param),
    )


def _text_item(items, code_value: str) -> str:
    """The first TEXT content item with this concept code, anywhere below ``items``."""
    for item in items:
        names = item.get("ConceptNameCodeSequence") or []
        if names and names[0].CodeValue == code_value and "TextValue" in item:
            return str(item.TextValue)
        found = _text_item(item.get("ContentSequence") or [], code_value)
        if found:
            return found
    return ""
