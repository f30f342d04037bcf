"""The command line: lazy start-up, the command table, shared options, the printer."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import pytest
from fresh_python import run_fresh

from core import cli
from core.commands import COMMANDS, console
from core.progress import Progress, drive, format_eta

ROOT = Path(__file__).resolve().parents[2]


def _fresh(code: str) -> str:
    r = run_fresh(code)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_building_the_parser_and_help_load_no_command_module_nor_torch():
    out = _fresh(
        "import sys, contextlib, io\nfrom core import cli\ncli.build_parser()\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    for a in (['--help'], ['--version']):\n"
        "        try:\n            cli.main(a)\n        except SystemExit:\n            pass\n"
        "print(sorted(m for m in sys.modules if m.startswith('core.commands.') or "
        "m.split('.')[0] in ('torch', 'scipy', 'matplotlib', 'paramiko')))"
    )
    assert out == "[]"


def test_every_listed_command_is_registered_by_its_module_with_its_help():
    parser = cli.build_parser(COMMANDS)  # every module imported
    sub = next(a for a in parser._actions if a.dest == "command")
    assert set(sub.choices) == set(COMMANDS)
    helps = {a.dest: a.help for a in sub._choices_actions}
    assert helps == {name: c.help for name, c in COMMANDS.items()}
    for name in COMMANDS:  # real parsers, not the one-line placeholders
        assert sub.choices[name].add_help, name


def test_only_the_chosen_command_module_is_imported():
    out = _fresh(
        "import sys\nfrom core import cli\ncli.build_parser(['info'])\n"
        "print(sorted(m for m in sys.modules if m.startswith('core.commands.')))"
    )
    assert out == "['core.commands.imaging']"


def test_a_missing_command_module_fails_loudly(monkeypatch):
    monkeypatch.setitem(COMMANDS, "ghost", COMMANDS["info"].__class__("core.commands.no_such_module", "x"))
    with pytest.raises(ModuleNotFoundError, match="no_such_module"):
        cli.main(["ghost"])


def test_shared_option_groups(capsys):
    parser = cli.build_parser(["train", "ring", "experiment"])
    a = parser.parse_args(
        [
            "train",
            "--data",
            "d",
            "--out",
            "o",
            "--preset",
            "paper",
            "--config",
            "c.toml",
            "--set",
            "ds=2",
            "--set",
            "patience=3",
        ]
    )
    assert (a.preset, a.config, a.overrides) == ("paper", Path("c.toml"), ["ds=2", "patience=3"])
    a = parser.parse_args(
        ["ring", "turn", "--server", "/r", "--site", "a", "--data", "d", "--set", "ds=2", "--identity", "k"]
    )
    assert a.overrides == ["ds=2"] and a.identity == Path("k") and a.server == "/r"
    a = parser.parse_args(["ring", "status", "--server", "sftp://h/x", "--trust-host-key"])
    assert a.trust_host_key
    with pytest.raises(SystemExit):  # experiment takes no settings file: its site processes could not
        parser.parse_args(["experiment", "--site", "a=x", "--out", "o", "--config", "c.toml"])
    assert "--config" in capsys.readouterr().err


def test_every_preset_option_names_the_default_the_code_uses():
    from core.commands.options import PRESET_HELP
    from core.training.config import DEFAULT_PRESET, load_config

    assert f"(default: {DEFAULT_PRESET}," in PRESET_HELP and load_config().preset == DEFAULT_PRESET
    parser = cli.build_parser(["train", "experiment", "ring", "flare"])
    helps = set()
    for command, *action in (["train"], ["experiment"], ["ring", "turn"], ["flare", "job"], ["flare", "simulate"]):
        p = next(a for a in parser._actions if a.dest == "command").choices[command]
        if action:
            p = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction)).choices[action[0]]
        preset = next((a for a in p._actions if "--preset" in a.option_strings), None)
        if preset is not None:
            helps.add(preset.help)
    assert helps == {PRESET_HELP}


def test_gui_without_a_registered_application_says_how_to_install(monkeypatch, capsys):
    from core.commands import gui

    monkeypatch.setattr(gui, "entry_points", lambda group: [])
    assert cli.main(["gui"]) == 2
    assert "pip install 'hematoma-relay[gui]'" in capsys.readouterr().err


def test_gui_finds_the_application_through_its_entry_point():
    from importlib.metadata import entry_points

    (ep,) = entry_points(group="hemarelay.gui")
    assert ep.value == "app.main:main"


def test_format_eta():
    assert [format_eta(s) for s in (None, float("nan"), 0.2, 42.4, 185, 7800)] == [
        "",
        "",
        "",
        "about 42 s left",
        "about 3 min 05 s left",
        "about 2 h 10 min left",
    ]


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def _events():
    yield Progress("Loading", 0, 2, "a.nii.gz (1 of 2)")
    for n in range(3):
        yield Progress("Segmenting", n, 3, f"slice {n + 1} of 3", eta_s=3 - n)
    yield Progress("Loading", 1, 2, "b.nii.gz (2 of 2)")
    yield Progress("Loading", 1, 2, "b.nii.gz (2 of 2)")  # a repeat: no new line
    return "done"


def test_console_printer_in_a_log_keeps_steps_and_drops_fine_progress():
    out = io.StringIO()
    printer = console.ConsolePrinter(quiet_stages=("Segmenting",), stream=out)
    assert drive(_events(), printer) == "done"
    assert out.getvalue().splitlines() == [
        "Loading [0%]: a.nii.gz (1 of 2)",
        "Segmenting: slice 1 of 3",
        "Loading [50%]: b.nii.gz (2 of 2)",
    ]


def test_console_printer_on_a_terminal_rewrites_one_status_line():
    out = _Tty()
    printer = console.ConsolePrinter(quiet_stages=("Segmenting",), stream=out)
    drive(_events(), printer)
    printer.close()
    text = out.getvalue()
    assert "\r\033[KSegmenting [67%]: slice 3 of 3, about 1 s left" in text
    lines = [ln.split("\r\033[K")[-1] for ln in text.split("\n") if ln.split("\r\033[K")[-1]]
    assert lines == ["Loading [0%]: a.nii.gz (1 of 2)", "Loading [50%]: b.nii.gz (2 of 2)"]
