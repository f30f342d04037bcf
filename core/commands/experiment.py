"""``hemarelay experiment``: the paper's SSL vs MSL comparison in one command."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..training.config import list_presets, load_config


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "experiment", help="reproduce the paper: SSL on each site vs MSL through the ring",
        description="Train SSL on each site and MSL by cyclic weight transfer (the real ring, one "
        "process per site, one epoch per turn), all from one seed; evaluate every model on every "
        "site's test/ and normal/ scans; write table2.csv/.md, stats.json, the figures, "
        "models/<MODEL>/model.safetensors and report.html in OUT.")
    p.add_argument("--site", action="append", required=True, metavar="NAME=DIR",
                   help="a site folder (train/, test/, normal/); give two or more, e.g. "
                        "--site a=DIR --site b=DIR")
    p.add_argument("--out", type=Path, required=True, metavar="DIR")
    p.add_argument("--preset", default=None,
                   help=f"training settings: {', '.join(list_presets())} (default cpu-small)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                   help="one training setting, applied last (repeatable)")
    p.add_argument("--server", default=None, metavar="URL",
                   help="ring server for MSL: sftp://user@host/path or a folder "
                        "(default: OUT/ring/server)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted experiment in OUT, "
                   "skipping finished steps")
    p.add_argument("--poll", type=float, default=0.5, metavar="S",
                   help="seconds between the ring sites' manifest reads")
    p.set_defaults(func=run_experiment_command)


class _Printer:
    """Experiment steps, ring turns and evaluated scans as lines; training epochs
    and per-slice progress as the ``train`` command shows them."""

    QUIET = ("Segmenting", "Brain extraction", "Cleaning up")

    def __init__(self, console) -> None:
        self.console, self.last = console, ""

    def __call__(self, ev) -> None:
        from ..training.trainer import TrainingProgress
        if isinstance(ev, TrainingProgress) or ev.stage in self.QUIET:
            if self.console.tty or isinstance(ev, TrainingProgress):
                self.console(ev)
            return
        frac = f" [{100 * ev.fraction:.0f}%]" if ev.fraction is not None else ""
        eta = f" ETA {int(ev.eta_s) // 60}m{int(ev.eta_s) % 60:02d}s" if ev.eta_s else ""
        line = f"{ev.stage}{frac}: {ev.message}{eta}"
        if ev.message != self.last:
            self.console.line(line, final=True)
            self.last = ev.message


def run_experiment_command(args: argparse.Namespace) -> int:
    from ..experiment import ExperimentPlan, parse_site_arg, run_experiment
    from .model import _Console, _drive

    config = load_config(args.preset, None, args.overrides)
    plan = ExperimentPlan(sites=tuple(parse_site_arg(s) for s in args.site), out=args.out, config=config,
                          overrides=tuple(args.overrides), server=args.server, poll_s=args.poll)
    console = _Console()
    result = _drive(run_experiment(plan, resume=args.resume), _Printer(console))
    console.close()
    print((args.out / "table2.md").read_text())
    if result.skipped:
        print(f"Skipped finished steps: {', '.join(result.skipped)}.")
    print(f"Results in {args.out} (report.html, stats.json); {result.seconds / 60:.1f} min.")
    return 0
