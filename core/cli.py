"""``hemarelay``: the command-line tool for the headless work.

Each group of subcommands lives in ``core/commands/<name>.py`` with a
``register(subparsers)`` function that adds its parsers and sets
``func(args) -> int``. Errors for users are :class:`HemaRelayError`: printed on
one line, exit status 2, never a traceback.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

from . import __version__
from .errors import HemaRelayError

COMMAND_MODULES = [
    "core.commands.imaging",
    "core.commands.model",
    "core.commands.report",
    "core.commands.ring",
    "core.commands.experiment",
    "core.commands.flare",
    "core.commands.gui",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hemarelay",
        description="Hematoma Relay: hematoma segmentation trained across hospitals "
        "by cyclic weight transfer.",
    )
    parser.add_argument("--version", action="version", version=f"hemarelay {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # that command group is not built yet
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except HemaRelayError as exc:
        print(f"hemarelay: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("hemarelay: interrupted; nothing was published.", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
