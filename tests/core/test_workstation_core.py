"""Reading workstation core (no Qt): planes, painting in any plane, interpolation,
limited fill, measurements, the stored-range notice. Real case 051 where it matters."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.annotation import Editor, EditorSettings, HURange, MaskModel, Tool
from core.annotation.fill import fill_region
from core.annotation.interpolate import interpolate_between_slices
from core.annotation.planes import Plane, PlaneGeometry
from core.cases.case_files import case_files, measurements_path
from core.cases.measurements import (
    MeasureKind,
    distance_mm,
    load_measurements,
    make_measurement,
    mask_hu_per_slice,
    midline_shift,
    save_measurements,
    thickness_mm,
)
from core.errors import InputError
from core.imaging.stored_range import stored_range

SHAPE = (6, 20, 30)  # k, row, col
SPACING = (5.0, 0.5, 0.4)


# ------------------------------------------------------------------ planes
@pytest.mark.parametrize("plane", list(Plane))
def test_plane_images_positions_and_boxes_agree(plane):
    vol = np.arange(np.prod(SHAPE)).reshape(SHAPE)
    geo = PlaneGeometry(plane, SHAPE, SPACING)
    depth = 3
    img = geo.image(vol, depth)
    assert img.shape == geo.image_shape
    for drow, dcol in ((0, 0), (2, 5), (img.shape[0] - 1, img.shape[1] - 1)):
        voxel = tuple(int(v) for v in geo.to_voxel(depth, drow, dcol))
        assert img[drow, dcol] == vol[voxel]
        assert geo.from_voxel(voxel) == (depth, drow, dcol)
    region = np.zeros((2, 3), bool)
    region[0, 0] = region[1, 2] = True
    box, block = geo.box(depth, (1, 2), region)
    out = np.zeros(SHAPE, bool)
    out[box] = block
    for r, c in np.argwhere(region):
        assert out[tuple(int(v) for v in geo.to_voxel(depth, r + 1, c + 2))]
    assert out.sum() == 2


def test_plane_pixel_sizes_and_orientation_labels():
    geos = {p: PlaneGeometry(p, SHAPE, SPACING) for p in Plane}
    assert geos[Plane.AXIAL].pixel_mm == (0.5, 0.4)
    assert geos[Plane.CORONAL].pixel_mm == (5.0, 0.4)  # 5 mm tall pixels: a view scales them
    assert geos[Plane.SAGITTAL].pixel_mm == (5.0, 0.5)
    assert Plane.SAGITTAL.corner_labels[:2] == ("A", "P")  # anterior on the left
    assert Plane.CORONAL.corner_labels[:2] == ("R", "L")  # radiological


def test_brush_stroke_in_sagittal_paints_one_slice_column_and_undoes_in_one_step():
    hu = np.full(SHAPE, 50, np.int16)
    model = MaskModel(np.zeros(SHAPE, np.uint8))
    ed = Editor(model, hu, SPACING[1:], settings=EditorSettings(brush_mm=1.0), slice_mm=SPACING[0])
    col = 7  # the sagittal slice
    ed.press(Tool.BRUSH, col, (2.0, 4.0), Plane.SAGITTAL)  # image row = k, image col = row reversed
    ed.drag((2.0, 10.0))
    ed.release()
    painted = np.argwhere(model.data)
    assert set(painted[:, 2]) == {col} and set(painted[:, 0]) == {2}
    rows = set(painted[:, 1])
    assert {SHAPE[1] - 1 - 4, SHAPE[1] - 1 - 10} <= rows and len(rows) >= 7
    assert model.undo_depth == 1
    model.undo()
    assert not model.data.any()


def test_threshold_box_paints_in_range_pixels_inside_the_box_only():
    hu = np.zeros(SHAPE, np.int16)
    hu[2, 5:10, 5:10] = 60
    hu[2, 0:3, 0:3] = 60  # in range but outside the box
    model = MaskModel(np.zeros(SHAPE, np.uint8))
    ed = Editor(model, hu, SPACING[1:], slice_mm=SPACING[0])
    ed.press(Tool.THRESHOLD, 2, (4.0, 4.0))
    ed.drag((12.0, 12.0))
    out = ed.release()
    assert out.changed == 25 and model.data[2, 5:10, 5:10].all() and model.data.sum() == 25
    assert model.undo_depth == 1


# ------------------------------------------------------------------ interpolation
def _disc(shape, centre, radius):
    r, c = np.ogrid[: shape[0], : shape[1]]
    return (r - centre[0]) ** 2 + (c - centre[1]) ** 2 <= radius**2


def test_interpolation_fills_the_empty_slices_between_drawn_ones_with_blended_shapes():
    shape = (9, 60, 60)
    mask = np.zeros(shape, np.uint8)
    mask[1] = _disc(shape[1:], (30, 20), 6)
    mask[7] = _disc(shape[1:], (30, 40), 12)
    res = interpolate_between_slices(mask, 0, (5.0, 1.0, 1.0))
    assert res.filled_slices == (2, 3, 4, 5, 6) and res.gaps == 1
    add = np.zeros(shape, bool)
    add[res.region.box] = res.region.mask
    assert not add[[0, 1, 7, 8]].any()  # drawn and outside slices untouched
    areas = add.sum(axis=(1, 2))[2:7]
    assert np.all(np.diff(areas) > 0)  # grows from the small to the large disc
    centres = [np.argwhere(add[k])[:, 1].mean() for k in range(2, 7)]
    assert np.all(np.diff(centres) > 0)  # and drifts towards the second one
    assert abs(areas[2] - np.pi * 9**2) < 0.15 * np.pi * 9**2  # midway radius ~ 9


def test_interpolation_works_along_the_coronal_axis_and_reports_nothing_to_fill():
    shape = (10, 12, 20)
    mask = np.zeros(shape, np.uint8)
    mask[2:6, 3, 5:9] = 1
    mask[2:6, 8, 5:9] = 1
    res = interpolate_between_slices(mask, 1, (5.0, 0.4, 0.4))
    assert res.filled_slices == (4, 5, 6, 7)
    full = np.zeros(shape, np.uint8)
    full[2:6, 3:9, 5:9] = 1
    assert interpolate_between_slices(full, 1, (5.0, 0.4, 0.4)).region is None


# ------------------------------------------------------------------ fill
def test_fill_is_cut_at_its_limit_to_the_part_nearest_the_seed():
    hu = np.full((5, 40, 40), 60, np.int16)  # everything in the blood range: a leak
    res = fill_region(hu, (2, 20, 20), HURange(), (1.0, 1.0, 1.0), 100, three_d=True)
    assert res.limited and res.region.n_voxels <= 100 and res.whole.n_voxels == hu.size
    pts = np.argwhere(res.region.mask) + [s.start for s in res.region.box]
    assert np.abs(pts - [2, 20, 20]).max() <= 4  # a ball around the click
    small = fill_region(hu, (2, 20, 20), HURange(), (1.0, 1.0, 1.0), 10**6)
    assert not small.limited and small.region.n_voxels == 40 * 40  # 2-D: one slice
    assert fill_region(hu, (2, 20, 20), HURange(70, 90), (1.0, 1.0, 1.0), 100) is None


def test_fill_in_a_coronal_slice_stays_in_that_slice():
    hu = np.zeros((6, 10, 10), np.int16)
    hu[1:4, 5, 2:6] = 60
    hu[1:4, 6, 2:6] = 60
    res = fill_region(hu, (2, 5, 3), HURange(), (5.0, 1.0, 1.0), 1000, plane=Plane.CORONAL)
    out = np.zeros(hu.shape, bool)
    out[res.region.box] = res.region.mask
    assert out.sum() == 12 and out[:, 5].sum() == 12


def test_3d_fill_from_the_scalp_of_051_stays_under_its_limit(site_a):
    from core.annotation import open_case
    from core.progress import run_to_end

    s = run_to_end(open_case(site_a / "test" / "ct_051.nii.gz"))
    k = s.n_slices // 2
    row = s.hu[k, s.hu.shape[1] // 2]
    col = int(np.flatnonzero((row >= 40) & (row <= 90))[0])  # first blood-range pixel: scalp
    limit = int(5.0 / s.ct.voxel_volume_ml)
    seed = (k, s.hu.shape[1] // 2, col)
    # the plain HU-range fill (edge=None): the soft tissue of the whole head would leak in
    res = fill_region(s.hu, seed, HURange(), s.stack.spacing, limit, three_d=True, edge=None)
    assert res.limited and res.whole_ml > 50
    assert 0 < res.region.n_voxels <= limit and res.ml <= 5.0
    # the product's fill stops at the bleed's edge rule, so far less is connected
    edged = fill_region(s.hu, seed, HURange(), s.stack.spacing, limit, three_d=True)
    assert edged is None or edged.whole_ml < res.whole_ml / 2
    if edged is not None:
        assert edged.region.n_voxels <= limit


# ------------------------------------------------------------------ measurements
def _world(k, r, c):
    return (c * 0.4, r * 0.4, k * 5.0)


def test_ruler_and_thickness():
    sp = (5.0, 0.4, 0.4)
    assert distance_mm((0, 0, 0), (0, 30, 40), sp) == pytest.approx(20.0)
    mask = np.zeros((3, 50, 50), np.uint8)
    mask[1, 10:40, 20:45] = 1  # 25 columns = 10 mm thick along a row
    t = thickness_mm(mask, (1, 25, 5), (1, 25, 49), sp)
    assert t == pytest.approx(10.0, abs=0.4)
    m = make_measurement(MeasureKind.THICKNESS, "axial", [(1, 25, 5), (1, 25, 49)], spacing=sp, world=_world, mask=mask)
    assert m.value == pytest.approx(t) and "10." in m.text


def _shifted_phantom(shift_px: int):
    """A head phantom: a falx (bright line) on column 100 and a septum displaced by
    ``shift_px`` columns towards the patient's left."""
    hu = np.zeros((5, 200, 200), np.int16)
    hu[:, 20:180, 100] = 80  # falx, anterior-posterior
    hu[:, 95:110, 100 + shift_px] = 60  # septum pellucidum
    return hu


def test_midline_shift_on_a_shifted_phantom_reads_the_known_distance():
    sp = (5.0, 0.45, 0.45)
    shift = 17
    hu = _shifted_phantom(shift)
    # the points a reader places: the falx's ends and the septum
    a, b, septum = (2, 25, 100), (2, 175, 100), (2, 100, 100 + shift)
    assert hu[a] == hu[b] == 80 and hu[septum] == 60
    ms = midline_shift(a, b, septum, sp)
    assert abs(ms.distance_mm - shift * 0.45) <= 0.45 and ms.side == "left"
    # a slanted falx: the distance is perpendicular to it, not along the row
    ms2 = midline_shift((2, 0, 0), (2, 100, 100), (2, 0, 100), (1.0, 1.0, 1.0))
    assert ms2.distance_mm == pytest.approx(100 / np.sqrt(2))
    with pytest.raises(InputError):
        midline_shift(a, a, septum, sp)


def test_hu_statistics_per_slice_and_in_a_circle():
    hu = np.zeros((3, 20, 20), np.int16)
    hu[1, 5:10, 5:10] = 60
    hu[1, 5, 5] = 70
    mask = (hu > 0).astype(np.uint8)
    rows, overall = mask_hu_per_slice(hu, mask)
    assert [r.slice for r in rows] == [1] and overall.n == 25 and overall.max == 70
    assert overall.mean == pytest.approx((24 * 60 + 70) / 25)
    m = make_measurement(
        MeasureKind.HU_CIRCLE,
        "axial",
        [(1, 7, 7), (1, 7, 9)],
        spacing=(1, 1, 1),
        world=_world,
        image=hu[1],
        image_point=(7.0, 7.0),
        pixel_mm=(1.0, 1.0),
    )
    assert m.stats.n == 13 and m.stats.mean == 60 and m.unit == "HU"  # radius 2 px disc, inside the block


def test_measurements_file_round_trip_beside_the_mask(tmp_path):
    path = measurements_path(tmp_path / "mask_051.nii.gz")
    assert path == tmp_path / "measurements_051.json" == case_files(tmp_path / "ct_051.nii.gz").measurements
    assert measurements_path(tmp_path / "mask_051.NII.GZ").name == "measurements_051.json"  # the one NIfTI rule
    assert measurements_path(tmp_path / "seg.nii").name == "measurements_seg.json"
    hu = np.full((3, 10, 10), 50, np.int16)
    mask = np.zeros_like(hu, dtype=np.uint8)
    mask[1, 2:4, 2:4] = 1
    items = [
        make_measurement(
            MeasureKind.RULER, "coronal", [(0, 0, 0), (2, 0, 0)], spacing=(5, 1, 1), world=_world, user="dr"
        ),
        make_measurement(MeasureKind.MASK_HU, "axial", (), spacing=(5, 1, 1), world=_world, hu=hu, mask=mask),
    ]
    save_measurements(path, items, "051")
    assert json.loads(path.read_text())["case"] == "051"
    back = load_measurements(path)
    assert back == items
    path.write_text("{not json")
    with pytest.raises(InputError, match="measurements_051.json"):
        load_measurements(path)
    save_measurements(path, [], "051")
    assert not path.exists() and load_measurements(path) == []


# ------------------------------------------------------------------ stored range
def test_clipped_storage_is_recognised_and_a_bone_window_is_called_out():
    rng = np.random.default_rng(0)
    real = rng.normal(30, 400, (10, 64, 64)).clip(-1024, 2500).astype(np.int16)
    assert not stored_range(real).clipped
    clipped = real.clip(-20, 100)
    sr = stored_range(clipped)
    assert sr.clipped_low and sr.clipped_high and (sr.low, sr.high) == (-20, 100)
    assert "clipped to -20 to 100 HU" in sr.window_notice("bone", -500, 1500)
    assert sr.window_notice("brain", 0, 80) == ""


def test_report_pdf_lists_the_measurements_kept_beside_the_mask(site_a, tmp_path):
    import shutil
    import subprocess

    from core.progress import run_to_end
    from core.reports import ReportJob, export_reports

    for kind in ("ct", "mask"):
        shutil.copy(site_a / "test" / f"{kind}_067.nii.gz", tmp_path / f"{kind}_067.nii.gz")
    m = make_measurement(
        MeasureKind.MIDLINE_SHIFT,
        "axial",
        [(5, 10, 100), (5, 200, 100), (5, 100, 117)],
        spacing=(5.0, 0.45, 0.45),
        world=_world,
    )
    save_measurements(measurements_path(tmp_path / "mask_067.nii.gz"), [m], "067")
    out = run_to_end(
        export_reports(
            [ReportJob("067", tmp_path / "ct_067.nii.gz", tmp_path / "mask_067.nii.gz")], pdf_dir=tmp_path / "pdf"
        )
    )
    text = subprocess.run(["pdftotext", str(out.pdf_paths[0]), "-"], capture_output=True, text=True, check=True).stdout
    assert "Midline shift: 7.6 mm" in text
