"""A one-page PDF volume report for one case (reportlab + matplotlib Agg).

The page is meant to be filed: it identifies the patient and study (name,
ID, accession number, study date, series: from the DICOM header, or "not
available" for a NIfTI case), the reviewer and case status, which mask was
measured and the software and model versions; then a table of the numbers
(ABC/2 beside the planimetric volume only when the two agree within 2x, else
below the table as an estimate that was not used), up to four key axial slices
in the brain window (W80/L40) with the mask's outline and a semi-transparent
fill, and the disclaimer line. The PDF stays at the site: it is written where
the user chooses, never into the ring's folders. Slices are shown the radiological way: the
patient's right on the left of the image, anterior at the top.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Sequence
from xml.sax.saxutils import escape

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.pdfgen import canvas
from reportlab.platypus import Paragraph, Table, TableStyle

from .. import __version__
from ..imaging.volume import Volume
from ..io import atomic_path
from .case import CanonicalCase, CaseReport, key_slices, slice_number

DISCLAIMER = "Not for diagnostic use without clinician review."
BRAIN_WINDOW = (80.0, 40.0)  # width, level in HU
_OVERLAY_RGB = (1.0, 0.15, 0.1)


def _window(slice_hu: np.ndarray, width: float, level: float) -> np.ndarray:
    lo = level - width / 2.0
    return np.clip((slice_hu.astype(np.float32) - lo) / width, 0.0, 1.0)


def _crop_box(cc: CanonicalCase, ks: list[int]) -> tuple[slice, slice]:
    """In-plane box around the head (tissue above 0 HU) on the shown slices."""
    tissue = (cc.ct.data[:, :, ks] > 0).any(axis=2) | cc.mask[:, :, ks].any(axis=2)
    ii, jj = np.flatnonzero(tissue.any(axis=1)), np.flatnonzero(tissue.any(axis=0))
    ni, nj = tissue.shape
    if ii.size == 0:
        return slice(0, ni), slice(0, nj)
    mi, mj = max(4, ni // 40), max(4, nj // 40)
    return (slice(max(ii[0] - mi, 0), min(ii[-1] + mi + 1, ni)), slice(max(jj[0] - mj, 0), min(jj[-1] + mj + 1, nj)))


def slices_png(cc: CanonicalCase, report: CaseReport, dpi: int = 150) -> bytes:
    """PNG of the key axial slices with the mask overlaid (2 x 2 grid)."""
    ks = key_slices(cc, report.largest_area_index)
    if not ks:  # nothing to outline: show the middle slice so the page is not blank
        ks = [cc.mask.shape[2] // 2]
    si, sj, _ = cc.ct.spacing
    rows_i, cols_j = _crop_box(cc, ks)
    areas = cc.slice_areas_cm2
    fig = Figure(figsize=(7.0, 7.0) if len(ks) > 1 else (4.5, 4.5), dpi=dpi, facecolor="black")
    FigureCanvasAgg(fig)
    ncol = 2 if len(ks) > 1 else 1
    nrow = math.ceil(len(ks) / ncol)
    for n, k in enumerate(ks):
        ax = fig.add_subplot(nrow, ncol, n + 1)
        # canonical [i, j] has i towards the patient's right and j anterior:
        # rows = j (anterior up, origin lower), columns = i reversed (right on the left)
        img = _window(cc.ct.data[rows_i, cols_j, k], *BRAIN_WINDOW).T[:, ::-1]
        m = cc.mask[rows_i, cols_j, k].T[:, ::-1]
        w_mm, h_mm = img.shape[1] * si, img.shape[0] * sj
        extent = (0.0, w_mm, 0.0, h_mm)
        ax.imshow(img, cmap="gray", vmin=0, vmax=1, origin="lower", extent=extent, interpolation="bilinear")
        if m.any():
            rgba = np.zeros((*m.shape, 4), np.float32)
            rgba[m] = (*_OVERLAY_RGB, 0.30)
            ax.imshow(rgba, origin="lower", extent=extent, interpolation="nearest")
            # contour on pixel centres, in the same mm frame as the image
            x = (np.arange(m.shape[1]) + 0.5) * si
            y = (np.arange(m.shape[0]) + 0.5) * sj
            ax.contour(x, y, m.astype(np.float32), levels=[0.5], colors=[_OVERLAY_RGB], linewidths=0.9)
        if report.empty:
            what = "no hematoma in the mask"
        else:
            tag = "  (largest area)" if k == report.largest_area_index else ""
            what = f"{areas[k]:.2f} cm\u00b2{tag}"
        ax.set_title(f"slice {slice_number(k)}, z = {cc.slice_z_mm(k):.1f} mm, {what}", color="white", fontsize=8)
        ax.text(0.02, 0.97, "R", transform=ax.transAxes, color="yellow", fontsize=8, va="top", ha="left")
        ax.text(0.98, 0.97, "L", transform=ax.transAxes, color="yellow", fontsize=8, va="top", ha="right")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_aspect("equal")
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.95, wspace=0.03, hspace=0.10)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, facecolor="black")
    return buf.getvalue()


def _fmt(value: float, unit: str, decimals: int = 1) -> str:
    return "n/a" if math.isnan(value) else f"{value:.{decimals}f} {unit}"


def _abc2_text(r: CaseReport) -> str:
    return f"{r.abc2_ml:.2f} mL  (A {r.a_mm:.1f} \u00d7 B {r.b_mm:.1f} \u00d7 C {r.c_mm:.1f} mm / 2)"


def _filing_rows(r: CaseReport) -> list[list[str]]:
    """Who and what the report is about: the lines a hospital files it by."""
    return [
        *[[k, v] for k, v in r.study.rows()],
        ["Case", r.case],
        ["Case status", f"{r.case_status} (by {r.reviewer})"],
        ["Mask measured", r.mask_source],
        ["Model", r.model_version or "none"],
        *([["Started from model", r.mask_model]] if r.mask_model else []),
        ["Report date; software", f"{r.date}; Hematoma Relay {r.software_version}"],
    ]


def unreviewed_line(r: CaseReport) -> str:
    """The warning a report of a case nobody has reviewed carries at its top."""
    return f"NOT REVIEWED: case status '{r.case_status}'; no clinician has marked this mask reviewed."


def _table_rows(r: CaseReport) -> list[list[str]]:
    if r.empty:
        largest = "no hematoma in the mask"
    else:
        largest = (
            f"{r.largest_area_cm2:.2f} cm\u00b2 on slice {r.largest_area_slice} (z = {r.largest_area_z_mm:.1f} mm)"
        )
    flag = (
        f"YES: {r.volume_ml:.1f} mL \u2265 {r.large_threshold_ml:g} mL"
        if r.large
        else f"no (< {r.large_threshold_ml:g} mL)"
    )
    rows = [["Planimetric volume", f"{r.volume_ml:.2f} mL"]]
    if r.abc2_agrees:  # an estimate beside the measured volume, never in its place
        rows.append(["ABC/2 estimate", _abc2_text(r)])
    rows += [
        [f"Large hematoma (\u2265 {r.large_threshold_ml:g} mL)", flag],
        ["Slices with hematoma", f"{r.n_slices} of {r.n_total_slices} ({r.slice_thickness_mm:.1f} mm thick)"],
        ["Largest axial area", largest],
        ["Mean density in mask", _fmt(r.mean_hu, "HU")],
        ["Separate parts (3-D)", str(r.n_components)],
    ]
    return rows


def _notes(r: CaseReport) -> list[str]:
    notes = [
        "Planimetric volume = voxels in the mask \u00d7 voxel volume; every drawn "
        "voxel counts (small parts are not removed). Slices are numbered from 1 at the "
        "inferior end, as in the viewer; z is the slice height in scanner coordinates."
    ]
    if not r.abc2_agrees:
        notes.append(
            f"ABC/2 estimate (Kothari 1996), not used: {_abc2_text(r)}, "
            f"{r.abc2_ml / r.volume_ml:.1f}\u00d7 the planimetric volume. ABC/2 assumes one "
            f"ellipsoid bleed; this mask has {r.n_components} separate part(s). "
            "Rely on the planimetric volume."
        )
    elif r.n_components > 1:
        notes.append(
            f"The mask has {r.n_components} separate parts; ABC/2 assumes one ellipsoid bleed and is an estimate only."
        )
    return notes


def render_pdf(report: CaseReport, png: bytes, path: Path, measurements: Sequence[str] = ()) -> None:
    """Draw the page into ``path`` (not atomic: callers pass a temp path)."""
    width, height = A4
    margin = 18 * mm
    styles = getSampleStyleSheet()
    c = canvas.Canvas(str(path), pagesize=A4)
    c.setTitle(f"Hematoma volume report - case {report.case}")
    c.setAuthor("Hematoma Relay")
    c.setCreator(f"Hematoma Relay {__version__}")
    c.setSubject(DISCLAIMER)

    y = height - margin
    c.setFont("Helvetica-Bold", 16)
    c.drawString(margin, y - 14, "Hematoma volume report")
    c.setFont("Helvetica", 10)
    who = f"{report.study.patient_name}, case {report.case}" if report.study.from_dicom else f"Case {report.case}"
    c.drawRightString(width - margin, y - 14, f"{who}   \u2022   {report.date}")
    y -= 24
    c.setFillColor(colors.HexColor("#b00000"))
    c.setFont("Helvetica-Bold", 11)
    c.drawString(margin, y - 11, DISCLAIMER)
    c.setFillColor(colors.black)
    y -= 20
    if not report.reviewed:  # said on the page, not only in a table cell
        c.setFillColor(colors.HexColor("#b00000"))
        c.setFont("Helvetica-Bold", 10)
        c.drawString(margin, y - 10, unreviewed_line(report))
        c.setFillColor(colors.black)
        y -= 16

    cell = styles["BodyText"].clone("cell", fontName="Helvetica", fontSize=8.5, leading=10)
    rows = [[k, Paragraph(escape(v), cell) if len(v) > 70 else v] for k, v in _filing_rows(report)]
    filing = Table(rows, colWidths=[58 * mm, width - 2 * margin - 58 * mm])
    filing.setStyle(
        TableStyle(
            [
                ("FONT", (0, 0), (0, -1), "Helvetica-Bold", 8.5),
                ("FONT", (1, 0), (1, -1), "Helvetica", 8.5),
                ("LINEBELOW", (0, 0), (-1, -1), 0.25, colors.lightgrey),
                ("TOPPADDING", (0, 0), (-1, -1), 1),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 1),
            ]
        )
    )
    _, fh = filing.wrapOn(c, width - 2 * margin, height)
    filing.drawOn(c, margin, y - fh)
    y -= fh + 4 * mm

    table = Table(_table_rows(report), colWidths=[58 * mm, width - 2 * margin - 58 * mm])
    large_row = next(n for n, row in enumerate(_table_rows(report)) if row[0].startswith("Large"))
    style = [
        ("FONT", (0, 0), (0, -1), "Helvetica-Bold", 9),
        ("FONT", (1, 0), (1, -1), "Helvetica", 9),
        ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
        ("BACKGROUND", (0, 0), (0, -1), colors.HexColor("#eeeeee")),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
    ]
    if report.large:
        style.append(("BACKGROUND", (1, large_row), (1, large_row), colors.HexColor("#ffd0d0")))
        style.append(("FONT", (1, large_row), (1, large_row), "Helvetica-Bold", 9))
    table.setStyle(TableStyle(style))
    _, th = table.wrapOn(c, width - 2 * margin, height)
    table.drawOn(c, margin, y - th)
    y -= th + 4 * mm

    note_style = styles["BodyText"].clone("note", fontSize=7.5, leading=9.5)
    # the reader's measurements (core.cases.measurements), listed as notes
    for text in [*_notes(report), *(f"Measured: {escape(m)}" for m in measurements)]:
        p = Paragraph(text, note_style)
        _, ph = p.wrapOn(c, width - 2 * margin, height)
        p.drawOn(c, margin, y - ph)
        y -= ph + 1.5 * mm

    footer_h = 14 * mm
    img = ImageReader(io.BytesIO(png))
    iw, ih = img.getSize()
    box_w, box_h = width - 2 * margin, y - 3 * mm - (margin + footer_h)
    scale = min(box_w / iw, box_h / ih)
    dw, dh = iw * scale, ih * scale
    c.drawImage(img, margin + (box_w - dw) / 2, y - 3 * mm - dh, dw, dh)

    c.setFont("Helvetica", 7.5)
    c.setFillColor(colors.grey)
    c.drawString(
        margin,
        margin + 6 * mm,
        f"Key axial slices in the brain window (W{BRAIN_WINDOW[0]:g}/L{BRAIN_WINDOW[1]:g}); "
        "red = measured mask. Patient's right on the image's left.",
    )
    c.drawString(margin, margin + 2 * mm, f"Generated by Hematoma Relay {__version__}. Volumes in mL (= cm\u00b3).")
    c.setFillColor(colors.HexColor("#b00000"))
    c.setFont("Helvetica-Bold", 7.5)
    c.drawRightString(width - margin, margin + 2 * mm, DISCLAIMER)
    c.showPage()
    c.save()


def write_case_pdf(report: CaseReport, ct: Volume, mask: Volume, path: str | Path) -> Path:
    """Write the one-page PDF for ``report`` atomically; ``ct``/``mask`` in any orientation."""
    path = Path(path)
    png = slices_png(CanonicalCase.from_volumes(ct, mask), report)
    with atomic_path(path) as tmp:
        render_pdf(report, png, tmp)
    return path
