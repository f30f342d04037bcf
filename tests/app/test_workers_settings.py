"""The worker runner and the preferences file."""

from __future__ import annotations

import threading
import time

import pytest

from app.settings import Settings, WindowPreset, load_settings, save_settings, settings_path
from app.viewer import Windower, WindowLevel
from app.workers import job_from_function, start_job
from core.errors import CancelledError, ConfigError, InputError
from core.progress import Progress


def test_job_runs_off_the_gui_thread_and_reports_in_order(qtbot):
    gui = threading.get_ident()
    seen_threads = []

    def work(token):
        seen_threads.append(threading.get_ident())
        for n in range(5):
            yield Progress("step", n, 5)
        return "result"

    events = []
    job = start_job("test", work, on_progress=lambda ev: events.append(ev.done))
    # signals are queued to the GUI thread: nothing arrives before the wait spins the loop
    with qtbot.waitSignal(job.finished, timeout=10000) as done:
        pass
    assert done.args == ["result"] and events == [0, 1, 2, 3, 4]
    assert seen_threads and seen_threads[0] != gui and not job.running


def test_job_errors_and_cancel_arrive_as_signals(qtbot):
    def failing(token):
        yield Progress("x")
        raise InputError("ct.nii.gz: truncated")

    job = start_job("fail", failing)
    with qtbot.waitSignal(job.errored, timeout=10000) as err:
        pass
    assert isinstance(err.args[0], InputError) and str(err.args[0]) == "ct.nii.gz: truncated"

    started = threading.Event()

    def slow(token):
        started.set()
        while True:
            token.raise_if_cancelled()
            yield Progress("loop")
            time.sleep(0.01)

    job = start_job("slow", slow)
    assert started.wait(10)
    with qtbot.waitSignal(job.errored, timeout=10000) as err:
        job.cancel()
    assert isinstance(err.args[0], CancelledError)

    job = start_job("fn", job_from_function("plain", lambda: 42))
    with qtbot.waitSignal(job.finished, timeout=10000) as done:
        pass
    assert done.args == [42]


def test_settings_round_trip_in_user_config_dir(tmp_path):
    s = Settings(user="dr.x", presets=(WindowPreset("brain", 100, 50, "1"),), blood_low_hu=35)
    path = save_settings(s)
    assert path == settings_path() and path.is_relative_to(tmp_path)  # the test's config dir
    back = load_settings()
    assert back.user == "dr.x" and back.presets[0].width == 100 and back.blood_low_hu == 35
    assert "[manual]" in path.read_text()


def test_damaged_or_invalid_settings_are_reported():
    settings_path().parent.mkdir(parents=True, exist_ok=True)
    settings_path().write_text("user = [unclosed")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings()
    settings_path().write_text("blood_low_hu = 95\nblood_high_hu = 40\n")
    with pytest.raises(ConfigError, match="lower bound"):
        load_settings()
    assert load_settings(settings_path().with_name("missing.toml")) == Settings()


def test_windowing_int16_table_and_float_agree():
    import numpy as np

    hu = np.array([[-1024, 0, 39, 40, 41, 80, 3000]], np.int16)
    w = Windower(WindowLevel(80, 40))
    a = w.apply(hu)
    b = w.apply(hu.astype(np.float32))
    assert a.dtype == np.uint8 and np.array_equal(a, b)
    assert a[0, 0] == 0 and a[0, -1] == 255 and a[0, 1] == 0 and a[0, 5] == 255
    assert abs(int(a[0, 3]) - 127) <= 1
    assert WindowLevel(80, 40).dragged(10, 0).width > 80
