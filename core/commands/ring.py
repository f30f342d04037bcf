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
import sys
import time
from dataclasses import asdict
from pathlib import Path

from ..io.atomic import atomic_write_bytes
from ..errors import ConfigError
from ..progress import NEVER_CANCELLED, Progress


URL_HELP = "the ring folder: sftp://user@host:port/path, sftp://host/~/path or a folder path"


def _ssh_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("SSH (sftp:// servers)")
    g.add_argument("--identity", type=Path, metavar="KEYFILE",
                   help="private key for the SSH login (default: ~/.ssh/config, ssh-agent, ~/.ssh/id_*)")
    g.add_argument("--known-hosts", type=Path, metavar="FILE",
                   help="known_hosts file to check the server's host key against (default ~/.ssh/known_hosts)")
    g.add_argument("--trust-host-key", action="store_true",
                   help="accept an unknown server host key and record it in known_hosts")
    g.add_argument("--ssh-config", type=Path, metavar="FILE", help="SSH config for host aliases "
                   "(default ~/.ssh/config)")


def _transport(args: argparse.Namespace):
    from ..ring.transport import open_transport, parse_server_url
    from ..ring.transport_sftp import SshOptions
    location = parse_server_url(args.server)
    ssh = SshOptions(identity=args.identity, known_hosts=args.known_hosts,
                     trust_host_key=args.trust_host_key, ssh_config=args.ssh_config)
    return open_transport(location, ssh)


def register(subparsers: argparse._SubParsersAction) -> None:
    ring = subparsers.add_parser("ring", help="train across sites by cyclic weight transfer",
                                 description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ring.add_subparsers(dest="ring_command", metavar="ACTION", required=True)

    p = sub.add_parser("init", help="create a ring on a server folder")
    p.add_argument("--server", required=True, metavar="URL", help=URL_HELP)
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
    _ssh_options(p)
    p.set_defaults(func=_init)

    p = sub.add_parser("turn", help="wait for this site's turn, train, publish")
    p.add_argument("--server", required=True, metavar="URL", help=URL_HELP)
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
    p.add_argument("--preset", default=None, help="training preset for the hematoma trainer "
                   "(default: the product recipe; cpu-small, experiment-cpu or paper for the paper's network)")
    p.add_argument("--config", type=Path, default=None, metavar="FILE.toml",
                   help="training settings file (overrides the preset)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one training setting, e.g. --set patches_per_volume=20")
    p.add_argument("--poll", type=float, default=5.0, metavar="S", help="seconds between manifest reads "
                   "while waiting")
    p.add_argument("--retry-for", type=float, default=600.0, metavar="S",
                   help="how long to retry a lost server connection")
    p.add_argument("--audit-log", type=Path, metavar="FILE",
                   help="local JSON-lines log of transfers (default ~/.local/state/hemarelay/ring-audit-SITE.jsonl)")
    _ssh_options(p)
    p.set_defaults(func=_turn)

    p = sub.add_parser("status", help="whose turn, round, history")
    p.add_argument("--server", required=True, metavar="URL", help=URL_HELP)
    p.add_argument("--json", action="store_true", help="the manifest and lease as JSON")
    p.add_argument("--history", type=int, default=10, help="history entries to show")
    _ssh_options(p)
    p.set_defaults(func=_status)

    p = sub.add_parser("fetch", help="download verified weights from the ring")
    p.add_argument("--server", required=True, metavar="URL", help=URL_HELP)
    p.add_argument("--out", required=True, type=Path, metavar="FILE", help="safetensors file to write")
    p.add_argument("--which", default="best", help="best (default), latest or a version number")
    p.add_argument("--raw", action="store_true", help="write the ring's safetensors file as it is, "
                   "instead of a model file for predict/evaluate")
    _ssh_options(p)
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
    with _transport(args) as t:
        t.connect()
        m = init_ring(t, config)
        print(f"Ring created at {t.describe()} for sites {', '.join(sites)} ({config.order} order); "
              f"first turn: site {m.next_site}.")
    return 0


class _Printer:
    """Progress on stderr: ring steps as they happen, training at most every few seconds."""

    def __init__(self, every_s: float = 5.0) -> None:
        self.every_s, self.last_line, self.last_t = every_s, "", 0.0

    def __call__(self, ev: Progress) -> None:
        from ..ring import turn as T
        ring_stage = ev.stage in (T.STAGE_WAIT, T.STAGE_LEASE, T.STAGE_DOWNLOAD, T.STAGE_TRAIN,
                                  T.STAGE_UPLOAD, T.STAGE_PUBLISH, T.STAGE_RELEASE, T.STAGE_RETRY)
        if ev.stage in (T.STAGE_DOWNLOAD, T.STAGE_UPLOAD) and ev.done < ev.total:
            return
        line = f"{ev.stage}: {ev.message}" if ev.message else ev.stage
        if not ring_stage:
            frac = f" {100 * ev.fraction:.0f}%" if ev.fraction is not None else ""
            eta = f", about {ev.eta_s:.0f} s left" if ev.eta_s else ""
            line = f"{ev.stage}{frac}{eta}"
            now = time.monotonic()
            if now - self.last_t < self.every_s and ev.fraction != 1.0:
                return
            self.last_t = now
        if line != self.last_line:
            print(line, file=sys.stderr, flush=True)
            self.last_line = line


def _turn(args: argparse.Namespace) -> int:
    from ..ring.audit import default_audit_path
    from ..ring.factory import trainer_factory
    from ..ring.turn import SiteOptions, run_site
    if args.epochs_per_turn is not None and args.epochs_per_turn < 1:
        raise ConfigError("--epochs-per-turn must be at least 1.")
    if not args.data.is_dir():
        raise ConfigError(f"{args.data}: data folder not found.")
    opts = SiteOptions(site=args.site, epochs_per_turn=args.epochs_per_turn, poll_s=args.poll,
                       retry_for_s=args.retry_for,
                       audit_path=args.audit_log or default_audit_path(args.site))
    printer = _Printer()
    with _transport(args) as t:
        t.connect()  # connection problems before the (slow) trainer set-up
        trainer = trainer_factory(args)
        gen = run_site(t, trainer, opts, NEVER_CANCELLED, wait=args.wait)
        while True:
            try:
                printer(next(gen))
            except StopIteration as stop:
                run = stop.value
                break
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
    from ..ring.server import read_manifest
    from ..ring.status import describe_ring
    with _transport(args) as t:
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
    with _transport(args) as t:
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
