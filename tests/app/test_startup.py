"""Issue 26, item 10: the window is up quickly, torch and the model load in the background.

Starts the real ``hemarelay gui`` (in a fresh process, an empty configuration) with the
start-up report bench/bench_startup.py uses: the window's first paint, then the first paint
of a real case, each with the CPU seconds the process had used and whether torch was loaded
by then. The wall-time target (under 2 s on 2 cores) is measured by the benchmark; this
test checks what makes it possible and fails when it breaks: no torch before either paint,
and CPU budgets well within the target.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WINDOW_CPU_S = 2.0  # CPU seconds by the window's first paint (about 1 s on this project's 2-core machine)
CASE_CPU_S = 3.0  # ... and by the first paint of a case (about 1.9 s)


def _start(tmp_path: Path, *args: str) -> dict[str, tuple[float, float, bool]]:
    env = dict(
        os.environ,
        PYTHONPATH=str(ROOT),
        QT_QPA_PLATFORM="offscreen",
        HEMARELAY_CONFIG_DIR=str(tmp_path / "config"),
        XDG_STATE_HOME=str(tmp_path / "state"),
        HEMARELAY_STARTUP_T0=repr(time.time()),
    )
    r = subprocess.run(
        [sys.executable, "-m", "core", "gui", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    out = {}
    for line in r.stderr.splitlines():
        if line.startswith("startup: ") and " s cpu " in line:
            head, rest = line[len("startup: ") :].split(" s cpu ")
            what, wall = head.rsplit(" ", 1)
            cpu, _, torch = rest.partition(" s torch ")
            out[what] = (float(wall), float(cpu), torch.strip() == "True")
    assert r.returncode == 0 and out, r.stderr[-3000:]
    return out


def test_the_window_and_a_case_paint_before_torch_loads(tmp_path, site_a):
    shown = _start(tmp_path)
    wall, cpu, torch = shown["window painted"]
    assert not torch, "torch was imported before the window was painted"
    assert cpu < WINDOW_CPU_S, f"{cpu:.2f} CPU seconds before the window was painted"
    case = _start(tmp_path, "--case", str(site_a / "test" / "ct_067.nii.gz"))
    wall, cpu, torch = case["case painted"]
    assert not torch, "torch was imported before the case was painted"
    assert cpu < CASE_CPU_S, f"{cpu:.2f} CPU seconds before the case was painted"
    print(f"window {shown['window painted']}, case {case['case painted']} (wall s, CPU s, torch)")
