"""README.md's command table stays one table with one true row per command.

A blank line inside a markdown table ends it (the rest renders as raw pipes),
and rows written once and edited in two places go stale. So: the "Commands"
section holds exactly one contiguous table; every command of the command table
(core/commands/__init__.py's COMMANDS) has exactly one row; a row's options
exist, those shown without brackets are required and those in brackets are
not; a command with actions (ring, flare) lists exactly its actions; and the
presets shown for ``train`` are the presets shipped.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

import pytest

from core import cli
from core.commands import COMMANDS
from core.resources import list_presets

ROOT = Path(__file__).resolve().parents[2]


def commands_section() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Commands\n", 1)[1].split("\n## ", 1)[0]
    return section.splitlines()


def table_rows() -> list[list[str]]:
    """The table's body rows as cells (``\\|`` inside a cell is a literal pipe)."""
    lines = commands_section()
    at = [i for i, line in enumerate(lines) if line.lstrip().startswith("|")]
    assert at, "no table in the Commands section"
    assert at == list(range(at[0], at[-1] + 1)), f"the table is split (lines {at}): a blank line ends a markdown table"
    header, rule, *body = (lines[i] for i in at)
    assert _cells(header) == ["command", "what it does"] and set(rule) <= set("|- :")
    rows = [_cells(line) for line in body]
    assert all(len(r) == 2 for r in rows), [r for r in rows if len(r) != 2]
    return rows


def _cells(line: str) -> list[str]:
    return [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]


def _usage(row: list[str]) -> str:
    m = re.fullmatch(r"`hemarelay ([^`]+)`", row[0])
    assert m, f"the first cell should be `hemarelay COMMAND ...`: {row[0]}"
    return m.group(1)


def _options(usage: str) -> list[tuple[str, bool]]:
    """Each option written in a usage line, with whether it stands inside brackets."""
    found, depth = [], 0
    for token in re.findall(r"\[|\]|[^\s\[\]]+", usage):
        if token == "[":
            depth += 1
        elif token == "]":
            depth -= 1
        elif re.fullmatch(r"--?[a-z][\w-]*", token):
            found.append((token, depth > 0))
    assert depth == 0, f"unbalanced brackets: {usage}"
    return found


def _subparsers(parser: argparse.ArgumentParser) -> argparse._SubParsersAction | None:
    return next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)


def test_every_command_has_exactly_one_row():
    counts = Counter(_usage(row).split()[0].split("/")[0] for row in table_rows())
    assert {name: n for name, n in counts.items() if n != 1} == {}, "commands with more than one row"
    assert set(counts) == set(COMMANDS), "rows and commands differ"


@pytest.mark.parametrize("name", list(COMMANDS))
def test_a_row_shows_the_command_as_its_parser_reads_it(name):
    (usage,) = [_usage(row) for row in table_rows() if _usage(row).split()[0] == name]
    parser = _subparsers(cli.build_parser([name])).choices[name]
    actions = _subparsers(parser)
    if actions is not None:  # ring, flare: the row lists the actions, key/init/...
        listed = usage.split()[1].split("/")
        assert listed == list(actions.choices), f"{name}: the row's actions differ from the command's"
        return
    known = {s: a for a in parser._actions for s in a.option_strings}
    shown = _options(usage)
    bare = {option for option, optional in shown if not optional}
    for option, optional in shown:
        assert option in known, f"{name}: the row shows {option}, which the command does not take"
        if optional and option in bare:
            continue  # `--data SITE [--data SITE2]`: a repeatable option, once more
        assert known[option].required != optional, f"{name}: {option} is {'not ' * optional}required"


def test_the_presets_shown_are_the_presets_shipped():
    (usage,) = [_usage(row) for row in table_rows() if _usage(row).startswith("train ")]
    shown = re.search(r"--preset ([\w|-]+)", usage).group(1).split("|")
    assert sorted(shown) == list_presets() and shown[0] == "default"  # the default first
