"""``hemarelay experiment``: the paper's SSL vs MSL comparison in one command."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..progress import drive
from . import add_command
from .console import ConsolePrinter
from .options import training_settings


def register(subparsers) -> None:
    p = add_command(
        subparsers,
        "experiment",
        parents=[training_settings(config_file=False)],
        description="Train SSL on each site and MSL by cyclic weight transfer (the real ring, one "
        "process per site, one epoch per turn), all from one seed; evaluate every model on every "
        "site's test/ and normal/ scans; write table2.csv/.md, stats.json, the figures, "
        "models/<MODEL>/model.safetensors and report.html in OUT.",
    )
    p.add_argument(
        "--site",
        action="append",
        required=True,
        metavar="NAME=DIR",
        help="a site folder (train/, test/, normal/); give two or more, e.g. --site a=DIR --site b=DIR",
    )
    p.add_argument("--out", type=Path, required=True, metavar="DIR")
    p.add_argument(
        "--server",
        default=None,
        metavar="URL",
        help="ring server for MSL: sftp://user@host/path or a folder (default: OUT/ring/server)",
    )
    p.add_argument(
        "--resume", action="store_true", help="continue an interrupted experiment in OUT, skipping finished steps"
    )
    p.add_argument(
        "--poll", type=float, default=0.5, metavar="S", help="seconds between the ring sites' manifest reads"
    )
    p.set_defaults(func=run_experiment_command)


def run_experiment_command(args: argparse.Namespace) -> int:
    from ..evaluation.inference import CASE_STAGES
    from ..experiment import ExperimentPlan, parse_site_arg, run_experiment
    from ..training.config import load_config

    # no --config: the ring's site processes get the preset and the --set texts only
    config = load_config(args.preset, None, args.overrides)
    plan = ExperimentPlan(
        sites=tuple(parse_site_arg(s) for s in args.site),
        out=args.out,
        config=config,
        overrides=tuple(args.overrides),
        server=args.server,
        poll_s=args.poll,
    )
    console = ConsolePrinter(quiet_stages=CASE_STAGES)
    result = drive(run_experiment(plan, resume=args.resume), console)
    console.close()
    print((args.out / "table2.md").read_text())
    if result.skipped:
        print(f"Skipped finished steps: {', '.join(result.skipped)}.")
    print(f"Results in {args.out} (report.html, stats.json); {result.seconds / 60:.1f} min.")
    return 0
