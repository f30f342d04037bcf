"""The ``hemarelay`` subcommands: which module builds and runs each one.

:data:`COMMANDS` is read by :mod:`core.cli` without importing any command
module: ``hemarelay --help`` lists the commands from here, and only the module
of the command being run is imported (most of them pull in torch, SciPy or
matplotlib, which take seconds to load). Each module's ``register(subparsers)``
adds its parsers with :func:`add_command`, which takes the one-line help from
here.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    module: str  # imported only when this command runs (or its --help is asked for)
    help: str  # the line in ``hemarelay --help``


COMMANDS: dict[str, Command] = {
    "info": Command("core.commands.imaging", "describe a CT: grid, HU range, orientation, notes"),
    "brain": Command("core.commands.imaging", "extract the brain (skull strip) of a CT"),
    "report": Command("core.commands.report", "hematoma volume report (CSV, and a one-page PDF per case)"),
    "export-seg": Command("core.commands.seg", "write a mask as a DICOM Segmentation (SEG) of its CT series"),
    "compare": Command(
        "core.commands.compare", "agreement between two masks of a case (Dice, volumes, HD95, per slice)"
    ),
    "train": Command("core.commands.model", "train the segmentation network on a site folder"),
    "predict": Command("core.commands.model", "segment hematomas in CT scans"),
    "evaluate": Command("core.commands.model", "Dice and volumes of a model on a site's test cases"),
    "ring": Command("core.commands.ring", "train across sites by cyclic weight transfer"),
    "experiment": Command("core.commands.experiment", "reproduce the paper: SSL on each site vs MSL through the ring"),
    "flare": Command("core.commands.flare", "train as an NVIDIA FLARE cyclic job (optional extra)"),
    "pacs": Command(
        "core.commands.pacs", "the hospital's PACS: find studies, get CT series into the worklist, send SEG + SR back"
    ),
    "gui": Command("core.commands.gui", "open the desktop application (worklist, viewer, mask editing, reports)"),
}


def add_command(subparsers: argparse._SubParsersAction, name: str, **kwargs) -> argparse.ArgumentParser:
    """The parser of command ``name`` (listed in :data:`COMMANDS`), with its help line."""
    return subparsers.add_parser(name, help=COMMANDS[name].help, **kwargs)
