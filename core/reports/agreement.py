"""Agreement between two masks of one case (two raters, or manual vs model):
the paper's inter-rater comparison.

Dice, both planimetric volumes and their difference, the 95th-percentile
Hausdorff distance (HD95) between the two surfaces in millimetres, and a
per-slice table. Slices are the canonical axial slices numbered from 1 at the
inferior end, as the viewer numbers them, with their height z in scanner mm.

HD95 follows MONAI's ``compute_hausdorff_distance(percentile=95)``: the surface
voxels of each mask (voxels with a 6-connected neighbour outside it), the
distance in mm from each surface voxel of one mask to the nearest surface
voxel of the other (an exact Euclidean distance transform with the voxel
spacing), the 95th percentile of each direction, and the larger of the two.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from ..errors import GeometryError, InputError
from ..evaluation.metrics import dice, volume_ml
from ..imaging.orientation import to_canonical
from ..imaging.volume import Volume, same_grid
from ..io import load_ct, load_mask
from ..io.nifti import read_nifti


@dataclass(frozen=True)
class SliceAgreement:
    slice: int  # 1-based canonical axial slice, as in the viewer
    z_mm: float
    area_a_cm2: float
    area_b_cm2: float
    dice: float  # on this slice (1.0 when both are empty, never listed then)


@dataclass(frozen=True)
class MaskAgreement:
    a: str  # what mask A is (file name or "manual", ...)
    b: str
    dice: float
    volume_a_ml: float
    volume_b_ml: float
    hd95_mm: float  # nan when one mask is empty (no surface to measure to)
    slices: tuple[SliceAgreement, ...]
    note: str = ""

    @property
    def difference_ml(self) -> float:
        """B minus A."""
        return self.volume_b_ml - self.volume_a_ml

    def to_json(self) -> dict:
        d = asdict(self)
        d["difference_ml"] = self.difference_ml
        d["slices"] = [asdict(s) for s in self.slices]
        if math.isnan(self.hd95_mm):
            d["hd95_mm"] = None  # JSON has no nan
        return d

    def text(self) -> str:
        hd = "n/a" if math.isnan(self.hd95_mm) else f"{self.hd95_mm:.2f} mm"
        lines = [
            f"A: {self.a}",
            f"B: {self.b}",
            f"Dice {self.dice:.3f}   volume A {self.volume_a_ml:.2f} mL   volume B "
            f"{self.volume_b_ml:.2f} mL   B - A {self.difference_ml:+.2f} mL   HD95 {hd}",
        ]
        if self.note:
            lines.append(self.note)
        if self.slices:
            lines.append(f"{'slice':>5} {'z mm':>8} {'A cm2':>7} {'B cm2':>7} {'Dice':>6}")
            lines += [
                f"{s.slice:>5} {s.z_mm:>8.1f} {s.area_a_cm2:>7.2f} {s.area_b_cm2:>7.2f} {s.dice:>6.3f}"
                for s in self.slices
            ]
        return "\n".join(lines)


def _surface(m: np.ndarray) -> np.ndarray:
    return m & ~ndimage.binary_erosion(m, structure=ndimage.generate_binary_structure(3, 1), border_value=0)


def hd95_mm(a: np.ndarray, b: np.ndarray, spacing: tuple[float, float, float]) -> float:
    """95th-percentile Hausdorff distance (mm) between two non-empty boolean masks."""
    sa, sb = _surface(a), _surface(b)
    if not sa.any() or not sb.any():
        return float("nan")
    # crop to the box holding both surfaces (plus nothing: distances are to surface voxels)
    box = np.argwhere(sa | sb)
    lo, hi = box.min(axis=0), box.max(axis=0) + 1
    cut = tuple(slice(int(x), int(y)) for x, y in zip(lo, hi))
    sa, sb = sa[cut], sb[cut]
    to_b = ndimage.distance_transform_edt(~sb, sampling=spacing)[sa]
    to_a = ndimage.distance_transform_edt(~sa, sampling=spacing)[sb]
    return float(max(np.percentile(to_b, 95), np.percentile(to_a, 95)))


def compare_volumes(a: Volume, b: Volume, name_a: str = "A", name_b: str = "B") -> MaskAgreement:
    """Agreement of two masks on one grid (any orientation)."""
    if not same_grid(a, b):
        raise GeometryError(
            f"The two masks are on different grids: {name_a}: {a.geometry_text()}; {name_b}: {b.geometry_text()}."
        )
    ca, _ = to_canonical(a)
    cb, _ = to_canonical(b)
    ma, mb = np.asarray(ca.data) != 0, np.asarray(cb.data) != 0
    vox_ml = ca.voxel_volume_ml
    pixel_cm2 = float(np.linalg.norm(np.cross(ca.affine[:3, 0], ca.affine[:3, 1]))) / 100.0
    ni, nj, _ = ca.shape
    rows = []
    for k in np.flatnonzero(ma.any(axis=(0, 1)) | mb.any(axis=(0, 1))):
        z = float((ca.affine @ np.array([(ni - 1) / 2.0, (nj - 1) / 2.0, float(k), 1.0]))[2])
        sa, sb = ma[:, :, k], mb[:, :, k]
        rows.append(
            SliceAgreement(int(k) + 1, z, float(sa.sum()) * pixel_cm2, float(sb.sum()) * pixel_cm2, dice(sa, sb))
        )
    note = ""
    if not ma.any() and not mb.any():
        hd, note = 0.0, "Both masks are empty: they agree that there is no hematoma."
    elif not ma.any() or not mb.any():
        hd, note = float("nan"), "One mask is empty: there is no surface distance to measure."
    else:
        hd = hd95_mm(ma, mb, ca.spacing)
    return MaskAgreement(
        name_a, name_b, dice(ma, mb), volume_ml(ma, vox_ml), volume_ml(mb, vox_ml), hd, tuple(rows), note
    )


def _mask_file(path: Path) -> Volume:
    path = Path(path).expanduser()
    if not path.exists():
        raise InputError(f"{path}: mask file not found.")
    data, affine = read_nifti(path)
    return Volume((np.asarray(data) != 0).astype(np.uint8), affine, source=path)


def compare_files(mask_a: str | Path, mask_b: str | Path, ct: str | Path | None = None) -> MaskAgreement:
    """``hemarelay compare``: with ``ct`` both masks must lie on the CT's grid
    (a DICOM folder's working grid included), else on each other's."""
    if ct is not None:
        vol = load_ct(ct)
        a, b = load_mask(mask_a, vol), load_mask(mask_b, vol)
    else:
        a, b = _mask_file(Path(mask_a)), _mask_file(Path(mask_b))
    return compare_volumes(a, b, Path(mask_a).name, Path(mask_b).name)
