"""How long a slice change takes in the real main window, offscreen.

Opens a real 512 x 512 CT-ICH case (a copy in a temp folder, with a stand-in
prediction: the radiologists' mask grown by 3 pixels, since no trained model
ships with the data) in the MainWindow with both overlays on, then steps
through every slice several times. One slice change = ``set_slice`` (window
lookup for the CT, label images for both overlays, corner text) plus a
synchronous repaint of the view, i.e. what the user waits for. Also times a
brush dab (model edit + overlay refresh + repaint). The target is < 16 ms
per slice change.

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/bench_viewer.py [--case 051] [--size 900]

Prints a machine reference (a fixed numpy workload) so figures from
different machines can be compared.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def machine_reference_ms() -> float:
    """Median of 5 runs of a fixed workload: sort 2 M float32 + a 512^2 int16 gather."""
    rng = np.random.default_rng(0)
    a = rng.random(2_000_000, dtype=np.float32)
    table = rng.integers(0, 255, 65536, dtype=np.uint8)
    idx = rng.integers(0, 65535, (512, 512), dtype=np.uint16)
    times = []
    for _ in range(5):
        t = time.perf_counter()
        np.sort(a)
        for _ in range(20):
            table[idx]
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def prepare(case: str, folder: Path) -> None:
    from scipy import ndimage

    from core.cases.datasets import shared_data_root
    from core.io import load_ct, load_mask, save_mask

    src = shared_data_root() / "ctich" / "site-a" / "test"
    if not (src / f"ct_{case}.nii.gz").exists():
        src = shared_data_root() / "ctich" / "site-a" / "train"
    for kind in ("ct", "mask"):
        shutil.copy(src / f"{kind}_{case}.nii.gz", folder / f"{kind}_{case}.nii.gz")
        os.chmod(folder / f"{kind}_{case}.nii.gz", 0o644)
    ct = load_ct(folder / f"ct_{case}.nii.gz")
    m = load_mask(folder / f"mask_{case}.nii.gz", ct).data
    pred = ndimage.binary_dilation(m, structure=np.ones((7, 7, 1), bool)).astype(np.uint8)
    save_mask(pred, ct, folder / f"pred_{case}.nii.gz")


def open_case_in(app, w, folder: Path, case: str):
    """Open ``case`` of ``folder`` in the main window ``w``: its session, or None
    (said on stderr) when it did not open within a minute."""
    w.controller.ask = lambda *a: "Discard"
    w.open_folder(folder)
    w.open_label(case)
    end = time.monotonic() + 60
    while w.controller.session is None and time.monotonic() < end:
        app.processEvents()
        time.sleep(0.005)
    if w.controller.session is None:
        print("the case did not open", file=sys.stderr)
    return w.controller.session


def summary(label: str, ms: list[float]) -> str:
    ms = sorted(ms)
    p95 = ms[int(0.95 * (len(ms) - 1))]
    return (
        f"{label:<34} median {statistics.median(ms):6.2f} ms   p95 {p95:6.2f} ms   "
        f"max {ms[-1]:6.2f} ms   ({len(ms)} changes)"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", default="051", help="site-a case id (default 051, 46 slices)")
    ap.add_argument("--size", type=int, default=900, help="view size in pixels (square)")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    from PySide6.QtWidgets import QApplication

    tmp = Path(tempfile.mkdtemp(prefix="bench-viewer-"))
    os.environ["HEMARELAY_CONFIG_DIR"] = str(tmp / "config")
    try:
        prepare(args.case, tmp)
        app = QApplication.instance() or QApplication([])
        from app.settings import Settings
        from app.viewer import OverlayStyle
        from app.window import MainWindow

        w = MainWindow(Settings(user="bench"))
        w.show()
        w.view.view.resize(args.size, args.size)
        s = open_case_in(app, w, tmp, args.case)
        if s is None:
            return 1
        view = w.view
        viewport = view.view.viewport()
        n = view.n_slices
        print(
            f"case {args.case}: {s.hu.shape[2]} x {s.hu.shape[1]} pixels, {n} slices; "
            f"view {viewport.width()} x {viewport.height()} px; Qt platform "
            f"{app.platformName()}"
        )
        print(f"machine reference (fixed numpy workload): {machine_reference_ms():.1f} ms")

        def step_all(label: str) -> None:
            ms = []
            for r in range(args.rounds):
                order = range(n) if r % 2 == 0 else range(n - 1, -1, -1)
                for k in order:
                    t = time.perf_counter()
                    view.set_slice(k)
                    viewport.repaint()
                    ms.append((time.perf_counter() - t) * 1000)
                app.processEvents()
            print(summary(label, ms))

        for name in ("manual", "prediction"):
            view.set_style(name, OverlayStyle(True, 0.5, False))
        step_all("both overlays filled")
        for name in ("manual", "prediction"):
            view.set_style(name, OverlayStyle(True, 0.5, True))
        step_all("both overlays outlined")
        view.set_difference_mode(True)
        step_all("difference view")
        view.set_difference_mode(False)
        for name in ("manual", "prediction"):
            view.set_style(name, OverlayStyle(True, 0.5, False))

        from core.annotation import Tool

        w.edit.set_tool(Tool.BRUSH)
        view.set_slice(n // 2)
        ms = []
        for i in range(60):
            t = time.perf_counter()
            view.editPressed.emit(view.k, 200.0 + i, 200.0 + i)  # what a click emits
            view.editReleased.emit()
            viewport.repaint()
            ms.append((time.perf_counter() - t) * 1000)
        print(summary("brush dab (4 mm) incl. repaint", ms))
        w.close()
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
