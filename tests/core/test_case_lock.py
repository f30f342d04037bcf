"""One writer per case (issue 15), on real CT-ICH cases: a second program opening a
case someone edits gets it read-only and is told who holds it; a dead holder's
lock is taken over; status changes are compare-and-swap and never lost."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from core.annotation.case_lock import CaseLock, held_by_other, read_holder
from core.annotation.session import open_case
from core.cases.worklist import CaseStatus, StatusConflictError, StatusStore, scan_folder
from core.errors import InputError
from core.progress import run_to_end

ROOT = Path(__file__).resolve().parents[2]
CASES = ("067", "052")


@pytest.fixture()
def folder(site_a: Path, tmp_path: Path) -> Path:
    out = tmp_path / "cases"
    out.mkdir()
    for case in CASES:
        for kind in ("ct", "mask"):
            shutil.copy(site_a / "test" / f"{kind}_{case}.nii.gz", out / f"{kind}_{case}.nii.gz")
    return out


HOLDER = """
import sys, time
from core.annotation.session import open_case
from core.progress import run_to_end
s = run_to_end(open_case(sys.argv[1], user="dr-other"))
assert not s.read_only
print("open", flush=True)
time.sleep(600)
"""


def _other_window(ct: Path) -> subprocess.Popen:
    p = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(ct)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert p.stdout.readline().strip() == "open", p.stderr.read()
    return p


def test_a_second_program_opens_the_case_read_only_and_says_who_holds_it(folder):
    ct = folder / "ct_067.nii.gz"
    other = _other_window(ct)
    try:
        s = run_to_end(open_case(ct, user="dr-here"))
        assert s.read_only and "dr-other" in s.read_only_reason and "read-only" in s.notes[0]
        s.model.replace(np.ones_like(s.model.data), "paint")
        before = (folder / "mask_067.nii.gz").read_bytes()
        with pytest.raises(InputError, match="open for editing by user 'dr-other'"):
            run_to_end(s.save(s.snapshot()))
        with pytest.raises(InputError, match="dr-other"):
            s.write_recovery(s.snapshot())
        assert (folder / "mask_067.nii.gz").read_bytes() == before
        assert not (folder / ".mask_067.recovery.npz").exists()
        wl = scan_folder(folder)
        with pytest.raises(InputError, match="open for editing by user 'dr-other'"):
            wl.set_status("067", CaseStatus.APPROVED, "dr-here")
        assert StatusStore(folder).get("067").status is CaseStatus.NEW
        # Another case of the folder is free.
        assert not run_to_end(open_case(folder / "ct_052.nii.gz", user="dr-here")).read_only
    finally:
        other.send_signal(signal.SIGKILL)
        other.wait()
    # The holder died without closing the case: its lock is stale and taken over.
    s = run_to_end(open_case(ct, user="dr-here"))
    assert not s.read_only and read_holder(folder / ".case_067.lock").user == "dr-here"
    run_to_end(s.save(s.snapshot()))
    s.close()
    assert not (folder / ".case_067.lock").exists() and held_by_other(folder / ".case_067.lock") is None


def test_a_lock_taken_over_as_stale_stops_the_old_holder_from_writing(folder, monkeypatch):
    import core.annotation.case_lock as CL

    s = run_to_end(open_case(folder / "ct_052.nii.gz", user="first"))
    lock = folder / ".case_052.lock"
    old = time.time() - CL.STALE_AFTER_S - 10
    os.utime(lock, (old, old))  # its machine went silent for half a day
    monkeypatch.setattr(CL, "INSTANCE", "another-process")
    CaseLock.acquire(lock, "second", "Case 052")
    with pytest.raises(InputError, match="no longer holds the case's lock"):
        run_to_end(s.save(s.snapshot()))


def test_status_updates_are_compare_and_swap(folder):
    window_a, window_b = scan_folder(folder), scan_folder(folder)
    window_b.set_status("052", CaseStatus.IN_PROGRESS, "b")
    # Window a still shows "new" and approves on that stale view: refused, not overwritten.
    with pytest.raises(StatusConflictError, match="now 'in progress'.*not 'new'"):
        window_a.set_status("052", CaseStatus.REVIEWED, "a", unopened_ok=True)
    assert StatusStore(folder).get("052").status is CaseStatus.IN_PROGRESS
    assert window_a.find("052").status.status is CaseStatus.IN_PROGRESS  # refreshed by the attempt
    window_a.set_status("052", CaseStatus.REVIEWED, "a", unopened_ok=True)  # acting on what it now shows works


def _hammer(folder: str, case: str, n: int, barrier) -> None:
    barrier.wait(timeout=30)
    store = StatusStore(folder)
    for i in range(n):
        store.set(case, CaseStatus.IN_PROGRESS if i % 2 else CaseStatus.NEW, f"user-{case}")


def test_two_programs_changing_two_cases_never_lose_a_change(folder):
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=_hammer, args=(str(folder), c, 40, barrier)) for c in CASES]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    store = StatusStore(folder)
    assert [len(store.history(c)) for c in CASES] == [40, 40]
