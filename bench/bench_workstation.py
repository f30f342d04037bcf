"""Slice change and crosshair move in the three-view workstation, offscreen.

Opens real case 051 (512 x 512 x 46, 0.42 x 0.42 x 5 mm; a copy in a temp
folder with a stand-in prediction: the radiologists' mask grown by 3 pixels,
since no trained model ships with the data) in the MainWindow, both overlays
filled, in the one-large-two-small layout. Times what the user waits for:

- slice change in each view: ``set_slice`` (window lookup, both overlays,
  crosshairs of the other views, corner text) plus a synchronous repaint of
  the viewer area (the three views in one paint pass and one flush, as Qt's
  event loop paints them);
- crosshair move: ``ViewerArea.set_cursor`` to a random voxel (the three
  views change slice) plus the same repaint.

Also printed: the same with each viewport repainted on its own (three flushes),
an upper bound.

Target: < 16 ms. Prints the machine's fp32 GEMM rate (torch.mm 2048^2) measured
in the same run, so figures from different machines can be compared.

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/bench_workstation.py [--case 051]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from bench_viewer import open_case_in, prepare, summary  # noqa: E402
from machine import gemm_gflops  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", default="051")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--moves", type=int, default=200)
    args = ap.parse_args()

    from PySide6.QtWidgets import QApplication

    tmp = Path(tempfile.mkdtemp(prefix="bench-workstation-"))
    os.environ["HEMARELAY_CONFIG_DIR"] = str(tmp / "config")
    os.environ["XDG_STATE_HOME"] = str(tmp / "state")
    try:
        prepare(args.case, tmp)
        app = QApplication.instance() or QApplication([])
        from app.settings import Settings
        from app.viewer import OverlayStyle
        from app.window import MainWindow

        w = MainWindow(Settings(user="bench"))
        w.resize(1900, 1050)
        w.show()
        s = open_case_in(app, w, tmp, args.case)
        if s is None:
            return 1
        for _ in range(20):
            app.processEvents()
        area = w.viewer
        for name in ("manual", "prediction"):
            area.set_style(name, OverlayStyle(True, 0.5, False))
        ports = [v.view.viewport() for v in area.views.values()]
        sizes = ", ".join(
            f"{p.value} {v.view.viewport().width()}x{v.view.viewport().height()}" for p, v in area.views.items()
        )
        print(
            f"case {args.case}: {s.hu.shape} stack (k, row, col), spacing {s.stack.spacing} mm; "
            f"views {sizes} px; Qt platform {app.platformName()}"
        )
        print(f"fp32 GEMM (torch.mm 2048^2, this run)  {gemm_gflops():.1f} GFLOP/s")

        def repaint() -> None:
            area.repaint()

        def repaint_each() -> None:
            for vp in ports:
                vp.repaint()

        for plane, view in area.views.items():
            n = view.n_slices
            step = max(n // 60, 1)  # about 60 distinct slices per sweep
            ms = []
            for r in range(args.rounds):
                order = range(0, n, step) if r % 2 == 0 else range(n - 1, -1, -step)
                for k in order:
                    t = time.perf_counter()
                    view.set_slice(k)
                    repaint()
                    ms.append((time.perf_counter() - t) * 1000)
                app.processEvents()
            print(summary(f"slice change, {plane.value}", ms))

        rng = np.random.default_rng(0)
        shape = s.hu.shape

        def crosshair_moves(count: int, paint) -> list[float]:
            """ms per move of the crosshair to a random voxel, painted by ``paint``."""
            ms = []
            for _ in range(count):
                voxel = tuple(int(rng.integers(0, n)) for n in shape)
                t = time.perf_counter()
                area.set_cursor(voxel)
                paint()
                ms.append((time.perf_counter() - t) * 1000)
            return ms

        ms = crosshair_moves(args.moves, repaint)
        app.processEvents()
        print(summary("crosshair move (3 views change)", ms))
        print(summary("crosshair move, 3 separate repaints", crosshair_moves(args.moves // 2, repaint_each)))
        area.set_difference_mode(True)
        print(summary("crosshair move, difference view", crosshair_moves(args.moves // 2, repaint)))
        area.set_difference_mode(False)
        w.close()
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
