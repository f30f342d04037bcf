"""``hemarelay flare``: the ring's training turn as an NVIDIA FLARE cyclic job.

    hemarelay flare job      --sites a,b,c --out JOBDIR [--preset P] [--rounds N] [--order fixed|shuffle]
    hemarelay flare simulate --site a=DIR --site b=DIR ... --workspace WS [job options | --job DIR]
    hemarelay flare fetch    JOBDIR-or-WORKSPACE -o MODEL [--which best|latest]

Needs the optional extra: pip install -e '.[flare]'. Each NVFlare client finds
its data folder in HEMARELAY_FLARE_DATA; it trains on the cases approved for
training there, as "Train my turn" does.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from . import add_command
from .options import cycle_options, cycle_settings, training_settings


def _job_options(p: argparse.ArgumentParser, sites_required: bool) -> None:
    """The job's options; the training preset and --set come from the shared parent
    (:func:`core.commands.options.training_settings`), the cycle from :func:`cycle_options`."""
    g = p.add_argument_group("the job")
    if sites_required:
        g.add_argument("--sites", required=True, help="NVFlare client names in ring order, e.g. a,b,c")
    g.add_argument(
        "--rounds",
        type=int,
        default=20,
        help="at most this many rounds (each site once "
        "per round) if the patience rule has not stopped the job (default 20)",
    )
    cycle_options(p)
    g.add_argument("--name", default="hemarelay-cyclic", help="the NVFlare job name")
    g.add_argument(
        "--turn-timeout",
        type=int,
        default=0,
        metavar="S",
        help="seconds a site may take for one turn (default 0: no limit)",
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    flare = add_command(subparsers, "flare", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = flare.add_subparsers(dest="flare_command", metavar="ACTION", required=True)

    settings = training_settings(config_file=False)
    p = sub.add_parser("job", parents=[settings], help="write the job folder an NVFlare admin submits")
    _job_options(p, sites_required=True)
    p.add_argument("--out", type=Path, required=True, metavar="JOBDIR", help="the job is written to JOBDIR/NAME")
    p.set_defaults(func=_job)

    p = sub.add_parser("simulate", parents=[settings], help="run the job in NVFlare's simulator on this machine")
    p.add_argument(
        "--site",
        action="append",
        required=True,
        metavar="NAME=DIR",
        help="a site and its data folder (cases approved for training); two or more",
    )
    p.add_argument(
        "--workspace",
        type=Path,
        required=True,
        metavar="WS",
        help="new or empty folder for the simulator (the server's results: WS/server)",
    )
    p.add_argument(
        "--job",
        type=Path,
        metavar="DIR",
        help="a job folder written by 'flare job' (default: write one from the options below, sites in --site order)",
    )
    p.add_argument("-o", "--out", type=Path, metavar="MODEL", help="also write the best model file here")
    _job_options(p, sites_required=False)
    p.set_defaults(func=_simulate)

    p = sub.add_parser("fetch", help="the job's model file, for predict and the desktop app")
    p.add_argument(
        "source",
        type=Path,
        metavar="JOBDIR-or-WORKSPACE",
        help="a downloaded job result, a simulator workspace or the server's run folder",
    )
    p.add_argument("-o", "--out", type=Path, required=True, metavar="MODEL")
    p.add_argument("--which", choices=["best", "latest"], default="best")
    p.add_argument("--job", default=None, help="the job id or name, when the folder holds several")
    p.set_defaults(func=_fetch)


def _settings(args: argparse.Namespace, sites: tuple[str, ...]):
    from ..flare.job import JobSettings

    return JobSettings(
        sites=sites,
        cycle=cycle_settings(args),
        preset=args.preset,
        overrides=tuple(args.overrides),
        rounds=args.rounds,
        name=args.name,
        turn_timeout=args.turn_timeout,
    )


def _job(args: argparse.Namespace) -> int:
    from ..flare.job import write_job

    sites = tuple(s.strip() for s in args.sites.split(",") if s.strip())
    path = write_job(_settings(args, sites), args.out)
    print(
        f"Wrote NVFlare job {path.name} to {path} for sites {', '.join(sites)}. Submit it from the "
        f"NVFlare admin console (submit_job {path}); each site's NVFlare client needs "
        f"hematoma-relay[flare] installed and HEMARELAY_FLARE_DATA set to its data folder."
    )
    return 0


def _print(text: str) -> None:
    """A job record's text reaches the terminal without escapes or control characters
    (the record comes from the NVFlare server's folder)."""
    from ..errors import printable

    print(printable(text))


def _print_record(record, where: Path) -> None:
    for t in record.turns:
        mark = "improved" if t.improved else f"no improvement ({t.patience_counter}/{record.patience})"
        _print(
            f"Turn {t.turn + 1} (round {t.round + 1}): site {t.site}, val loss {t.val_loss:.6g}, "
            f"{mark}, {t.seconds:.1f} s"
        )
    _print(f"The job {record.status}: {record.explanation}")
    if record.best:
        _print(
            f"Best weights: turn {record.best.turn + 1} (round {record.best.round + 1}, site "
            f"{record.best.site}), val loss {record.best.val_loss:.6g}, in {where}."
        )


def _simulate(args: argparse.Namespace) -> int:
    from ..experiment import parse_site_arg
    from ..flare.job import write_job
    from ..flare.result import fetch_model
    from ..flare.simulate import run_simulator

    specs = [parse_site_arg(s) for s in args.site]
    site_data = {s.name: s.data for s in specs}
    with tempfile.TemporaryDirectory(prefix="hemarelay-flare-job-") as tmp:
        job = args.job or write_job(_settings(args, tuple(site_data)), Path(tmp))
        print(
            f"Running NVFlare's simulator with sites {', '.join(site_data)} in {args.workspace} ...",
            file=sys.stderr,
            flush=True,
        )
        result = run_simulator(job, args.workspace, site_data)
    _print_record(result.record, result.record_path.parent)
    if args.out:
        got = fetch_model(result.workspace, args.out)
        _print(f"Wrote the best model ({got.weights.site}, round {got.weights.round + 1}) to {args.out}.")
    return 0


def _fetch(args: argparse.Namespace) -> int:
    from ..flare.result import fetch_model

    got = fetch_model(args.source, args.out, args.which, args.job)
    w = got.weights
    _print(
        f"Wrote the {args.which} weights of NVFlare job {got.record.job_name} ({got.record.job_id}): "
        f"round {w.round + 1}, turn {w.turn + 1}, site {w.site}, val loss {w.val_loss:.6g} "
        f"(sha256 {w.sha256[:12]}) to {args.out}. The job {got.record.status}"
        + (f": {got.record.explanation}" if got.record.explanation else ".")
    )
    return 0
