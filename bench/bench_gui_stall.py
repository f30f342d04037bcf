"""Event-loop stalls of the real main window while this site trains a ring turn.

Starts the MainWindow offscreen with an embedded ring (no server) and a temp
site folder linking N real CT-ICH training cases marked "approved for
training", clicks "Train my turn" and, until the turn is published, measures
how late a 5 ms QTimer fires (a stall = the gap minus 5 ms). Then keeps
measuring while the sync downloads the new weights and evaluates them on the
site's reviewed cases, while a case opens, and while its prediction is
recomputed with the new version. Target: no stall over 50 ms.

    .venv/bin/python bench/bench_gui_stall.py [--cases 3] [--preset cpu-small] [--set epochs_per_turn=1]

Prints the machine's fp32 matrix-multiply rate (torch.mm 2048^2) measured in
the same run as a reference.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from machine import gemm_gflops  # noqa: E402 (bench/ is the script's folder)


def summary(gaps: list[float]) -> str:
    if not gaps:
        return "no ticks"
    stalls = sorted(max(g - 0.005, 0.0) for g in gaps)
    p99 = stalls[int(0.99 * (len(stalls) - 1))]
    over = sum(s > 0.050 for s in stalls)
    return (
        f"{len(gaps)} ticks, worst stall {1000 * stalls[-1]:.1f} ms, 99th percentile "
        f"{1000 * p99:.1f} ms, median {1000 * stalls[len(stalls) // 2]:.1f} ms, {over} over 50 ms"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=3)
    ap.add_argument("--preset", default="cpu-small")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--epochs", type=int, default=1, help="epochs in the turn")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="hemarelay-stall-"))
    os.environ["XDG_STATE_HOME"] = str(tmp / "state")
    os.environ["HEMARELAY_CONFIG_DIR"] = str(tmp / "config")
    from PySide6.QtCore import QElapsedTimer, QTimer
    from PySide6.QtWidgets import QApplication

    from app.settings import Settings
    from app.window import MainWindow
    from core.cases.datasets import shared_data_root
    from core.cases.worklist import CaseStatus, StatusStore
    from core.site.setup import SiteSetup

    gemm = gemm_gflops()
    src = shared_data_root() / "ctich" / "site-a" / "train"
    site = tmp / "site"
    site.mkdir()
    for ct in sorted(src.glob("ct_*.nii.gz"))[: args.cases]:
        cid = ct.name[3:-7]
        for k in ("ct", "mask"):
            (site / f"{k}_{cid}.nii.gz").symlink_to(src / f"{k}_{cid}.nii.gz")
        StatusStore(site).set(cid, CaseStatus.APPROVED, "bench")

    app = QApplication.instance() or QApplication([])
    w = MainWindow(Settings(user="bench"))
    w.show()
    w.apply_site(
        SiteSetup(
            site="bench",
            data_folder=str(site),
            preset=args.preset,
            overrides=tuple(args.set),
            epochs_per_turn=args.epochs,
            poll_s=2.0,
        )
    )
    phase = {"name": "waiting for the ring"}
    gaps: dict[str, list[float]] = {}
    clock = QElapsedTimer()
    ticker = QTimer()
    ticker.setInterval(5)

    def tick() -> None:
        gaps.setdefault(phase["name"], []).append(clock.restart() / 1000.0)

    ticker.timeout.connect(tick)
    ended: list[tuple[bool, str]] = []
    w.ring_dock.ring.trainingEnded.connect(lambda end: ended.append((end.published, end.message)))

    def pump(cond, timeout_s: float) -> bool:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            app.processEvents()
            if cond():
                return True
            time.sleep(0.001)
        return False

    if not pump(lambda: w.ring_dock.panel.train_button.isEnabled(), 60):
        print("the ring did not become ready:", w.ring_dock.ring.status.text())
        return 1
    clock.start()
    ticker.start()
    phase["name"] = "training turn"
    t0 = time.monotonic()
    w.ring_dock.panel.train_button.click()
    if not pump(lambda: bool(ended), 3600):
        print("the turn did not end")
        return 1
    turn_s = time.monotonic() - t0
    phase["name"] = "sync + evaluation"
    t1 = time.monotonic()
    pump(lambda: any(v.score is not None for v in w.ring_dock.ring.versions()), 600)
    eval_s = time.monotonic() - t1
    # the open case's prediction recomputed with the new version (a worker thread in this process)
    phase["name"] = "opening a case"
    w.open_folder(site)
    first = w.worklist.cases[0].label
    w.open_label(first)
    pump(lambda: w.controller.session is not None, 120)
    phase["name"] = "prediction recompute"
    t2 = time.monotonic()
    w.ring_dock.ring.use_version(1)
    pump(lambda: "v1 from site" in w.display_panel.prediction_source.text(), 600)
    predict_s = time.monotonic() - t2
    ticker.stop()
    print(f"fp32 GEMM (torch.mm 2048^2, this run)  {gemm:.1f} GFLOP/s")
    print(
        f"turn: {ended[0][1]} ({args.cases} approved cases, preset {args.preset}, {args.epochs} epoch(s), "
        f"{turn_s:.1f} s from click to published)"
    )
    for name, g in gaps.items():
        print(f"event loop during {name:<18} {summary(g)}")
    print(
        f"sync + evaluation of the new version took {eval_s:.1f} s: "
        + "; ".join(f"v{v.version} {v.score.describe()}" for v in w.ring_dock.ring.versions() if v.score)
    )
    print(
        f"prediction of case {first} with v1 shown {predict_s:.1f} s after choosing the version: "
        f"{w.display_panel.prediction_source.text()}"
    )
    w.ring_dock.ring.stop()
    w.controller.ask = lambda *a: "Discard"
    w.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
