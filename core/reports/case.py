"""The numbers of one case's hematoma volume report.

Everything is measured on the mask exactly as drawn (or as predicted): small
connected components are NOT removed here, unlike the model evaluation,
because the clinician's report must measure what is on the screen.

Slices are counted on the canonical RAS grid (:mod:`core.imaging.orientation`):
index k = 0 is the most inferior axial slice. Every slice number in a report
is k + 1, the number the viewer shows ("Slice 12 / 35"), given with its
height z in world millimetres, which does not depend on any convention.

A report a hospital files also says whose case it is (patient name, ID,
accession number, study date and series from the DICOM header, or "not
available" for a NIfTI file), who reviewed it and its status, which mask was
measured, and the software and model versions.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .. import __version__
from ..errors import GeometryError
from ..evaluation.metrics import abc2, volume_ml
from ..imaging.orientation import to_canonical
from ..imaging.volume import Volume, same_grid
from ..io.dicom_source import StudyInfo

LARGE_ML_DEFAULT = 30.0  # ICH score: one point at 30 mL or more
# ABC/2 is an estimate for one ellipsoid bleed; beyond this factor from the
# planimetric volume (either way) it is left out of the main figures.
ABC2_AGREEMENT_FACTOR = 2.0
NOT_RECORDED = "not recorded"
REVIEWED_STATUSES = ("reviewed", "approved for training")  # core.cases.worklist.CaseStatus values


def slice_number(k: int) -> int:
    """The 1-based slice number the viewer shows for canonical axial index ``k``."""
    return int(k) + 1


@dataclass(frozen=True)
class CaseReport:
    case: str  # the case name only: no other patient identifier
    volume_ml: float  # planimetric: voxels in the mask x voxel volume
    abc2_ml: float  # ABC/2 estimate (Kothari 1996), see core.evaluation.metrics.abc2
    a_mm: float
    b_mm: float
    c_mm: float
    n_slices: int  # axial slices containing hematoma
    n_total_slices: int
    slice_thickness_mm: float
    largest_area_cm2: float
    largest_area_slice: int  # 1-based slice number as in the viewer; 0 when the mask is empty
    largest_area_z_mm: float  # world S coordinate of that slice; nan when empty
    mean_hu: float  # mean CT value inside the mask; nan when empty
    n_components: int  # 3-D connected parts (26-connectivity), none removed
    large: bool  # volume_ml >= large_threshold_ml
    large_threshold_ml: float
    mask_source: str  # "manual", "model v12", ...
    date: str  # ISO date of the report
    study: StudyInfo = StudyInfo()  # patient and study (DICOM), "not available" for NIfTI
    reviewer: str = NOT_RECORDED  # who set the case's status
    case_status: str = NOT_RECORDED  # "reviewed", "approved for training", ...
    model_version: str = ""  # the model that made the mask, or the site's model in use
    software_version: str = __version__
    measurements: tuple[str, ...] = ()  # the reader's measurements kept with the mask
    # provenance that follows the voxels (core.cases.mask_origin): the model a manual mask started
    # from, and the reader's changes against the prediction accepted from it
    mask_model: str = ""  # "" for a mask drawn without a model
    dice_vs_prediction: float = float("nan")
    voxels_added: int | None = None
    voxels_removed: int | None = None

    @property
    def reviewed(self) -> bool:
        """A clinician marked the case reviewed (or approved it for training)."""
        return self.case_status in REVIEWED_STATUSES

    @property
    def empty(self) -> bool:
        return self.n_slices == 0

    @property
    def largest_area_index(self) -> int:
        """Canonical axial index (0-based) of the largest-area slice; -1 when empty."""
        return self.largest_area_slice - 1

    @property
    def abc2_agrees(self) -> bool:
        """ABC/2 within a factor 2 of the planimetric volume (an empty mask: both 0)."""
        if self.volume_ml <= 0:
            return self.abc2_ml <= 0
        ratio = self.abc2_ml / self.volume_ml
        return 1 / ABC2_AGREEMENT_FACTOR <= ratio <= ABC2_AGREEMENT_FACTOR


@dataclass(frozen=True)
class CanonicalCase:
    """CT and mask on the canonical grid (axial slices are ``[:, :, k]``)."""

    ct: Volume
    mask: np.ndarray  # bool

    @classmethod
    def from_volumes(cls, ct: Volume, mask: Volume) -> "CanonicalCase":
        if not same_grid(ct, mask):
            raise GeometryError(
                f"{mask.source or 'mask'}: the mask does not fit its CT. Mask: "
                f"{mask.geometry_text()}; CT {ct.name}: {ct.geometry_text()}."
            )
        ct_c, _ = to_canonical(ct)
        mask_c, _ = to_canonical(mask)
        return cls(ct_c, np.asarray(mask_c.data) != 0)

    @property
    def slice_areas_cm2(self) -> np.ndarray:
        return self.mask.sum(axis=(0, 1)) * _pixel_area_mm2(self.ct.affine) / 100.0

    def slice_z_mm(self, k: int) -> float:
        """World S coordinate (mm) of the centre of axial slice ``k``."""
        ni, nj, _ = self.ct.shape
        centre = np.array([(ni - 1) / 2.0, (nj - 1) / 2.0, float(k), 1.0])
        return float((self.ct.affine @ centre)[2])


def _pixel_area_mm2(affine: np.ndarray) -> float:
    return float(np.linalg.norm(np.cross(affine[:3, 0], affine[:3, 1])))


def measure_case(
    ct: Volume,
    mask: Volume,
    case: str,
    mask_source: str = "manual",
    large_threshold_ml: float = LARGE_ML_DEFAULT,
    date: str | None = None,
    extra: dict | None = None,
) -> CaseReport:
    """Report numbers for one case from its CT and mask (same grid, any orientation)."""
    return measure_canonical(CanonicalCase.from_volumes(ct, mask), case, mask_source, large_threshold_ml, date, extra)


def measure_canonical(
    cc: CanonicalCase,
    case: str,
    mask_source: str = "manual",
    large_threshold_ml: float = LARGE_ML_DEFAULT,
    date: str | None = None,
    extra: dict | None = None,
) -> CaseReport:
    """``extra``: the filing fields (study, reviewer, case_status, model_version)."""
    m = cc.mask
    vol = volume_ml(m, cc.ct.voxel_volume_ml)
    est = abc2(m, cc.ct.affine)
    areas = cc.slice_areas_cm2
    n_slices = int(np.count_nonzero(areas))
    if n_slices:
        k = est.slice_index  # abc2 takes the largest-area slice, lowest k on ties
        area, z = float(areas[k]), cc.slice_z_mm(k)
        mean_hu = float(cc.ct.data[m].astype(np.float64).mean())
        n_comp = int(ndimage.label(m, structure=np.ones((3, 3, 3), bool))[1])
    else:
        k, area, z, mean_hu, n_comp = -1, 0.0, float("nan"), float("nan"), 0
    extra = dict(extra or {})
    return CaseReport(
        case=case,
        volume_ml=vol,
        abc2_ml=est.volume_ml,
        a_mm=est.a_mm,
        b_mm=est.b_mm,
        c_mm=est.c_mm,
        n_slices=n_slices,
        n_total_slices=int(m.shape[2]),
        slice_thickness_mm=float(cc.ct.spacing[2]),
        largest_area_cm2=area,
        largest_area_slice=slice_number(k),
        largest_area_z_mm=z,
        mean_hu=mean_hu,
        n_components=n_comp,
        large=vol >= large_threshold_ml,
        large_threshold_ml=float(large_threshold_ml),
        mask_source=mask_source,
        date=date or _dt.date.today().isoformat(),
        **extra,
    )


def key_slices(cc: CanonicalCase, largest: int, n_more: int = 3) -> list[int]:
    """Canonical indices (0-based) of the largest-area slice (index ``largest``) plus up
    to ``n_more`` others spread over the hematoma (at the 1/6, 1/2 and 5/6 points of the
    remaining slices, so the tiny tips are not chosen), sorted inferior to superior."""
    ks = np.flatnonzero(cc.mask.any(axis=(0, 1)))
    if largest < 0 or ks.size == 0:
        return []
    others = [int(k) for k in ks if k != largest]
    if len(others) > n_more:
        picks = {others[int(len(others) * (2 * i + 1) / (2 * n_more))] for i in range(n_more)}
        others = sorted(picks)
    return sorted([largest, *others])
