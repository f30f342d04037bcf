"""``hemarelay ring``: create a training ring, take turns, show its state, fetch weights.

    hemarelay ring init   --server URL --sites a,b [--order fixed|shuffle] [--seed N] [--patience N]
    hemarelay ring turn   --server URL --site a --data DIR [--wait] [--epochs-per-turn K]
    hemarelay ring status --server URL [--json]
    hemarelay ring fetch  --server URL --out FILE [--which best|latest|N]

URL is ``sftp://user@host:port/path`` (``/~/path`` for a folder under the login's
home) or a folder path (a mounted share, or one machine).
"""
from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from ..io.atomic import atomic_write_bytes
from ..errors import ConfigError
from ..progress import NEVER_CANCELLED, drive
from .console import ConsolePrinter
from .options import open_server, ring_server, training_settings
from . import add_command


def register(subparsers: argparse._SubParsersAction) -> None:
    ring = add_command(
        subparsers, "ring",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ring.add_subparsers(dest="ring_command", metavar="ACTION", required=True)
    server = ring_server()

    p = sub.add_parser("init", parents=[server], help="create a ring on a server folder")
    p.add_argument("--sites", required=True, help="comma-separated site names, e.g. a,b")
    p.add_argument("--order", choices=["fixed", "shuffle"], default="fixed",
                   help="fixed: the listed order every round; shuffle: a seeded new order every round")
    p.add_argument("--seed", type=int, default=0, help="shuffle and weight-initialisation seed")
    p.add_argument("--patience", type=int, default=10, help="turns without improvement before stopping")
    p.add_argument("--min-delta", type=float, default=1e-4, help="smallest val-loss drop that counts")
    p.add_argument("--convergence", choices=["global", "per-site"], default="global",
                   help="global: one patience counter over all turns (the paper); per-site: each "
                        "site against its own best, stop when all have run out")
    p.add_argument("--max-turns", type=int, default=None, help="stop after this many turns")
    p.add_argument("--epochs-per-turn", type=int, default=1, metavar="K")
    p.add_argument("--start-from", choices=["scratch", "default"], default="scratch",
                   help="the first turn trains from random weights drawn from --seed (scratch, the "
                        "paper) or from the default model shipped with the program (its sites must "
                        "train with --preset default)")
    p.add_argument("--reset-optimizer", action="store_true",
                   help="start a fresh optimizer every turn (the paper's later code) instead of "
                        "passing its state on")
    p.add_argument("--lease-ttl", type=float, default=600.0, metavar="S",
                   help="seconds a silent turn keeps the lease before another site may break it")
    p.add_argument("--clock-skew", type=float, default=60.0, metavar="S",
                   help="tolerated clock difference between sites")
    p.add_argument("--keep-versions", type=int, default=5, help="weights versions kept besides the best")
    p.set_defaults(func=_init)

    p = sub.add_parser("turn", parents=[server, training_settings()], help="wait for this site's turn, train, publish")
    p.add_argument("--site", required=True, help="this site's name in the ring")
    p.add_argument("--data", required=True, type=Path, metavar="DIR", help="this site's data folder")
    p.add_argument("--wait", action="store_true", help="keep taking turns until the ring converges")
    p.add_argument("--epochs-per-turn", type=int, default=None, metavar="K",
                   help="override the ring's setting")
    p.add_argument("--trainer", default="hematoma",
                   help="hematoma (default); toy: a tiny built-in model on synthetic data (or the "
                        "folder's *.npz toy cases), to check the ring's connections without medical "
                        "data (use a separate test ring: the first turn fixes the ring's model); or "
                        "package.module:function")
    p.add_argument("--poll", type=float, default=5.0, metavar="S", help="seconds between manifest reads "
                   "while waiting")
    p.add_argument("--retry-for", type=float, default=600.0, metavar="S",
                   help="how long to retry a lost server connection")
    p.add_argument("--audit-log", type=Path, metavar="FILE",
                   help="local JSON-lines log of transfers (default ~/.local/state/hemarelay/ring-audit-SITE.jsonl)")
    p.set_defaults(func=_turn)

    p = sub.add_parser("status", parents=[server], help="whose turn, round, history")
    p.add_argument("--json", action="store_true", help="the manifest and lease as JSON")
    p.add_argument("--history", type=int, default=10, help="history entries to show")
    p.set_defaults(func=_status)

    p = sub.add_parser("fetch", parents=[server], help="download verified weights from the ring")
    p.add_argument("--out", required=True, type=Path, metavar="FILE", help="safetensors file to write")
    p.add_argument("--which", default="best", help="best (default), latest or a version number")
    p.add_argument("--raw", action="store_true", help="write the ring's safetensors file as it is, "
                   "instead of a model file for predict/evaluate")
    p.set_defaults(func=_fetch)


def _init(args: argparse.Namespace) -> int:
    from ..ring.manifest import RingConfig
    from ..ring.server import init_ring
    sites = tuple(s.strip() for s in args.sites.split(",") if s.strip())
    config = RingConfig(sites=sites, order=args.order, seed=args.seed, patience=args.patience,
                        min_delta=args.min_delta, convergence=args.convergence, max_turns=args.max_turns,
                        epochs_per_turn=args.epochs_per_turn, reset_optimizer=args.reset_optimizer,
                        lease_ttl_s=args.lease_ttl, clock_skew_s=args.clock_skew,
                        keep_versions=args.keep_versions, start_from=args.start_from).validate()
    with open_server(args) as t:
        t.connect()
        m = init_ring(t, config)
        print(f"Ring created at {t.describe()} for sites {', '.join(sites)} ({config.order} order); "
              f"first turn: site {m.next_site}.")
    return 0


def _turn(args: argparse.Namespace) -> int:
    from ..ring.audit import default_audit_path
    from ..ring.turn import STAGE_DOWNLOAD, STAGE_UPLOAD, SiteOptions, run_site
    from ..turn_trainers import TrainerChoice, make_turn_trainer
    if args.epochs_per_turn is not None and args.epochs_per_turn < 1:
        raise ConfigError("--epochs-per-turn must be at least 1.")
    if not args.data.is_dir():
        raise ConfigError(f"{args.data}: data folder not found.")
    opts = SiteOptions(site=args.site, epochs_per_turn=args.epochs_per_turn, poll_s=args.poll,
                       retry_for_s=args.retry_for,
                       audit_path=args.audit_log or default_audit_path(args.site))
    printer = ConsolePrinter(quiet_stages=(STAGE_DOWNLOAD, STAGE_UPLOAD))
    with open_server(args) as t:
        t.connect()  # connection problems before the (slow) trainer set-up
        trainer = make_turn_trainer(TrainerChoice(
            data=args.data, spec=args.trainer, site=args.site, preset=args.preset, config=args.config,
            overrides=tuple(args.overrides)))
        run = drive(run_site(t, trainer, opts, NEVER_CANCELLED, wait=args.wait), printer)
    printer.close()
    for out in run.turns:
        r, tm = out.record, out.timings
        print(f"Turn {r.turn + 1} (round {r.round + 1}): site {r.site} published weights version "
              f"{r.version}; val loss {r.metrics['val_loss']:.6g}; training {tm.train_s:.1f} s, "
              f"transfer and bookkeeping {tm.overhead_s:.2f} s.")
    m = run.manifest
    if m.status != "running":
        best = (f"best weights version {m.best.weights.version} (val loss {m.best.val_loss:.6g}, "
                f"site {m.best.weights.site})") if m.best else "no weights"
        rule = f" Decided by {m.convergence.rule}: {m.convergence.explanation}" if m.convergence else ""
        print(f"The ring has {m.status} after {m.turns_done} turns; {best}.{rule}")
    return 0


def _status(args: argparse.Namespace) -> int:
    from ..ring.lease import read_lease
    from ..ring.manifest import read_manifest
    from ..ring.status import describe_ring
    with open_server(args) as t:
        t.connect()
        m = read_manifest(t)
        lease = read_lease(t)
        if args.json:
            doc = {"manifest": json.loads(m.to_bytes()), "next_site": m.next_site,
                   "lease": asdict(lease.lease) if lease and lease.lease else None}
            print(json.dumps(doc, indent=1))
        else:
            print(describe_ring(m, lease, t.describe(), args.history))
    return 0


def _fetch(args: argparse.Namespace) -> int:
    from ..ring.server import fetch_weights
    from ..ring.codec import decode_weights
    with open_server(args) as t:
        t.connect()
        data, ref, manifest = fetch_weights(t, args.which)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    from ..training.ring_turn import is_hematoma_model
    if args.raw or not is_hematoma_model(manifest.model_id):
        atomic_write_bytes(args.out, data)  # as the ring holds it (e.g. a toy test ring)
    else:
        # A model weights file that predict and evaluate load directly.
        from ..training.ring_turn import save_ring_weights_as_model
        best = manifest.best
        metrics = {"val_loss": best.val_loss} if best and best.weights.version == ref.version else {}
        save_ring_weights_as_model(decode_weights(data, f"weights version {ref.version}"),
                                   manifest.model_id or "", args.out,
                                   version=f"ring version {ref.version} from site {ref.site}",
                                   metrics=metrics)
    print(f"Wrote weights version {ref.version} from site {ref.site} (sha256 {ref.sha256[:12]}) to {args.out}.")
    return 0
