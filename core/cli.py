"""``hemarelay``: the command-line tool for the headless work.

The commands are listed in :data:`core.commands.COMMANDS`; each group lives in
``core/commands/<name>.py`` with a ``register(subparsers)`` function that adds
its parsers and sets ``func(args) -> int``. Only the module of the command
being run is imported, so ``hemarelay --version`` and ``--help`` start in a
fraction of a second (``bench/bench_startup.py``) and never load torch. Errors
for users are :class:`HemaRelayError`: printed on one line, exit status 2,
never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Iterable

from . import __version__
from .commands import COMMANDS
from .errors import HemaRelayError, printable


def build_parser(commands: Iterable[str] = ()) -> argparse.ArgumentParser:
    """The parser, with full sub-parsers for ``commands`` (their modules are
    imported) and a one-line entry for every other command."""
    parser = argparse.ArgumentParser(
        prog="hemarelay",
        description="Hematoma Relay: hematoma segmentation trained across hospitals by cyclic weight transfer.",
    )
    parser.add_argument("--version", action="version", version=f"hemarelay {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    modules = dict.fromkeys(COMMANDS[name].module for name in commands if name in COMMANDS)
    for module_name in modules:
        # A command listed but not installed is a broken installation: say so loudly.
        importlib.import_module(module_name).register(sub)
    for name, command in COMMANDS.items():
        if name not in sub.choices:
            sub.add_parser(name, help=command.help, add_help=False)
    return parser


def _command_in(argv: list[str]) -> str | None:
    """The command word: the first argument that is not an option (the
    top-level options, --version, --verbose and --help, take no value)."""
    return next((a for a in argv if not a.startswith("-")), None)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = _command_in(argv)
    parser = build_parser([command] if command else [])
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except HemaRelayError as exc:
        # Messages may quote a server's text: no terminal escapes or control characters.
        print(f"hemarelay: error: {printable(exc)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("hemarelay: interrupted; nothing was published.", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
