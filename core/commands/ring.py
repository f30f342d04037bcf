"""``hemarelay ring``: create a training ring, take turns, show its state, fetch weights.

    hemarelay ring key    --site a                 (this site's public signing key, for the coordinator)
    hemarelay ring init   --server URL --sites a,b --signers FILE [--order fixed|shuffle] [--seed N]
    hemarelay ring turn   --server URL --site a --data DIR [--trust-signers FILE] [--wait] [--share-optimizer]
    hemarelay ring status --server URL [--site a | --signers FILE] [--json]
    hemarelay ring fetch  --server URL --out FILE (--site a | --signers FILE) [--which best|latest|N]
    hemarelay ring audit  --server URL             (every file and field on the server, flagged)

Turns are signed: each site's Ed25519 key (``ring key`` creates it) is listed in the
ring at ``init`` (``--signers``: lines ``site ssh-ed25519 AAAA...``), pinned by every
site at first contact once a person confirmed it (``--trust-signers FILE`` or a yes on
the terminal), and every version is checked against its site's signature and this
site's last verified history before it is trained from or kept. ``status`` and
``fetch`` check against a site's pin (``--site``) or a signers file (``--signers``).

URL is ``sftp://user@host:port/path`` (``/~/path`` for a folder under the login's
home) or a folder path (a mounted share, or one machine).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from ..errors import ConfigError
from ..io.atomic import atomic_write_bytes
from ..progress import NEVER_CANCELLED, drive
from . import add_command
from .console import ConsolePrinter
from .options import cycle_options, cycle_settings, key_passphrase, open_server, ring_server, training_settings
from .ring_trust import check_trust, confirm_first_contact, given_pin, no_pin_text, signing_options, trust_dir


def _signer(args: argparse.Namespace):
    from ..ring.signing import TurnSigner, default_key_path

    path = args.signing_key or default_key_path(args.site)
    return TurnSigner.load_or_create(args.site, path, key_passphrase("HEMARELAY_KEY_PASSPHRASE", path))


def register(subparsers: argparse._SubParsersAction) -> None:
    ring = add_command(subparsers, "ring", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ring.add_subparsers(dest="ring_command", metavar="ACTION", required=True)
    server = ring_server()

    p = sub.add_parser("key", help="print this site's public signing key (created on first use)")
    p.add_argument("--site", required=True, help="this site's name in the ring")
    p.add_argument(
        "--signing-key",
        type=Path,
        metavar="FILE",
        help="the key file (default ~/.local/state/hemarelay/keys/ring-SITE.ed25519)",
    )
    p.set_defaults(func=_key)

    p = sub.add_parser("init", parents=[server], help="create a ring on a server folder")
    p.add_argument("--sites", required=True, help="comma-separated site names, e.g. a,b")
    p.add_argument(
        "--signers",
        type=Path,
        metavar="FILE",
        help="each site's public signing key, one 'site ssh-ed25519 AAAA...' line per site "
        "(collected with 'hemarelay ring key'); without it the ring is unsigned",
    )
    cycle_options(p)
    p.add_argument(
        "--convergence",
        choices=["global", "per-site"],
        default="global",
        help="global: one patience counter over all turns (the paper); per-site: each "
        "site against its own best, stop when all have run out",
    )
    p.add_argument("--max-turns", type=int, default=None, help="stop after this many turns")
    p.add_argument(
        "--start-from",
        choices=["scratch", "default"],
        default="scratch",
        help="the first turn trains from random weights drawn from --seed (scratch, the "
        "paper) or from the default model shipped with the program (its sites must "
        "train with --preset default)",
    )
    p.add_argument(
        "--reset-optimizer",
        action="store_true",
        help="start a fresh optimizer every turn (the paper's later code) instead of passing its state on",
    )
    p.add_argument(
        "--lease-ttl",
        type=float,
        default=600.0,
        metavar="S",
        help="seconds a silent turn keeps the lease before another site may break it",
    )
    p.add_argument(
        "--clock-skew", type=float, default=60.0, metavar="S", help="tolerated clock difference between sites"
    )
    p.add_argument("--keep-versions", type=int, default=5, help="weights versions kept besides the best")
    p.set_defaults(func=_init)

    p = sub.add_parser("turn", parents=[server, training_settings()], help="wait for this site's turn, train, publish")
    p.add_argument("--site", required=True, help="this site's name in the ring")
    p.add_argument("--data", required=True, type=Path, metavar="DIR", help="this site's data folder")
    p.add_argument("--wait", action="store_true", help="keep taking turns until the ring converges")
    p.add_argument("--epochs-per-turn", type=int, default=None, metavar="K", help="override the ring's setting")
    p.add_argument(
        "--trainer",
        default="hematoma",
        help="hematoma (default); toy: a tiny built-in model on synthetic data (or the "
        "folder's *.npz toy cases), to check the ring's connections without medical "
        "data (use a separate test ring: the first turn fixes the ring's model); or "
        "package.module:function",
    )
    p.add_argument("--poll", type=float, default=5.0, metavar="S", help="seconds between manifest reads while waiting")
    p.add_argument(
        "--retry-for", type=float, default=600.0, metavar="S", help="how long to retry a lost server connection"
    )
    p.add_argument(
        "--audit-log",
        type=Path,
        metavar="FILE",
        help="local JSON-lines log of transfers (default ~/.local/state/hemarelay/ring-audit-SITE.jsonl)",
    )
    signing_options(p, turn=True)
    p.set_defaults(func=_turn)

    p = sub.add_parser("status", parents=[server], help="whose turn, round, history")
    p.add_argument("--json", action="store_true", help="the manifest and lease as JSON")
    p.add_argument("--history", type=int, default=10, help="history entries to show")
    signing_options(p, turn=False)
    p.set_defaults(func=_status)

    p = sub.add_parser("fetch", parents=[server], help="download verified weights from the ring")
    p.add_argument("--out", required=True, type=Path, metavar="FILE", help="safetensors file to write")
    p.add_argument("--which", default="best", help="best (default), latest or a version number")
    p.add_argument(
        "--raw",
        action="store_true",
        help="write the ring's safetensors file as it is, instead of a model file for predict/evaluate",
    )
    signing_options(p, turn=False)
    p.set_defaults(func=_fetch)

    p = sub.add_parser(
        "audit",
        parents=[server],
        help="list every file and field on the server; flag what is not "
        "weights, hashes, signatures, scalars or site names",
    )
    p.add_argument("--json", action="store_true", help="the findings as JSON")
    p.set_defaults(func=_audit)


def _key(args: argparse.Namespace) -> int:
    from ..ring.names import check_name
    from ..ring.signing import TurnSigner, default_key_path, key_fingerprint

    try:
        check_name("site", args.site, "--site")
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    path = args.signing_key or default_key_path(args.site)
    signer = TurnSigner.load_or_create(args.site, path, key_passphrase("HEMARELAY_KEY_PASSPHRASE", path))
    print(f"{args.site} {signer.public}")
    print(
        f"# {key_fingerprint(signer.public)}, private key {path}: give the line above to the "
        "ring's coordinator (for 'ring init --signers').",
        file=sys.stderr,
    )
    return 0


def _init(args: argparse.Namespace) -> int:
    from ..ring.manifest import RingConfig
    from ..ring.server import init_ring
    from ..ring.signing import read_signers_file

    sites = tuple(s.strip() for s in args.sites.split(",") if s.strip())
    signers = read_signers_file(args.signers) if args.signers else {}
    config = RingConfig.of(
        sites,
        cycle_settings(args),
        convergence=args.convergence,
        max_turns=args.max_turns,
        reset_optimizer=args.reset_optimizer,
        lease_ttl_s=args.lease_ttl,
        clock_skew_s=args.clock_skew,
        keep_versions=args.keep_versions,
        start_from=args.start_from,
        signers=signers,
    ).validate()
    with open_server(args) as t:
        t.connect()
        m = init_ring(t, config)
        print(
            f"Ring created at {t.describe()} for sites {', '.join(sites)} ({config.order} order); "
            f"first turn: site {m.next_site}; "
            + ("turns signed with the listed keys." if signers else "UNSIGNED (no --signers).")
        )
        if signers:
            from ..ring.signing import ring_fingerprint

            print(
                f"Ring fingerprint {ring_fingerprint(m.ring_id, config)}: give it, with the signers file, "
                "to every site; each confirms it at first contact."
            )
    return 0


def _turn(args: argparse.Namespace) -> int:
    from ..ring.audit import default_audit_path
    from ..ring.turn import STAGE_DOWNLOAD, STAGE_UPLOAD, SiteOptions, run_site
    from ..turn_trainers import TrainerChoice, make_turn_trainer

    if args.epochs_per_turn is not None and args.epochs_per_turn < 1:
        raise ConfigError("--epochs-per-turn must be at least 1.")
    if not args.data.is_dir():
        raise ConfigError(f"{args.data}: data folder not found.")
    if args.max_epochs_per_turn < 1:
        raise ConfigError("--max-epochs-per-turn must be at least 1.")
    opts = SiteOptions(
        site=args.site,
        epochs_per_turn=args.epochs_per_turn,
        poll_s=args.poll,
        retry_for_s=args.retry_for,
        audit_path=args.audit_log or default_audit_path(args.site),
        signer=_signer(args),
        trust_dir=trust_dir(args, args.site),
        require_signed=not args.allow_unsigned,
        max_epochs_per_turn=args.max_epochs_per_turn,
        share_optimizer=args.share_optimizer,
    )
    printer = ConsolePrinter(quiet_stages=(STAGE_DOWNLOAD, STAGE_UPLOAD))
    with open_server(args) as t:
        t.connect()  # connection problems before the (slow) trainer set-up
        from ..ring.manifest import read_manifest

        confirm_first_contact(args, read_manifest(t), opts.signer)  # a person confirms new keys
        trainer = make_turn_trainer(
            TrainerChoice(
                data=args.data,
                spec=args.trainer,
                site=args.site,
                preset=args.preset,
                config=args.config,
                overrides=tuple(args.overrides),
            )
        )
        run = drive(run_site(t, trainer, opts, NEVER_CANCELLED, wait=args.wait), printer)
    printer.close()
    for out in run.turns:
        r, tm = out.record, out.timings
        _print(
            f"Turn {r.turn + 1} (round {r.round + 1}): site {r.site} published weights version "
            f"{r.version}; val loss {r.metrics['val_loss']:.6g}; training {tm.train_s:.1f} s, "
            f"transfer and bookkeeping {tm.overhead_s:.2f} s."
        )
    m = run.manifest
    if m.status != "running":
        best = (
            (
                f"best weights version {m.best.weights.version} (val loss {m.best.val_loss:.6g}, "
                f"site {m.best.weights.site})"
            )
            if m.best
            else "no weights"
        )
        rule = f" Decided by {m.convergence.rule}: {m.convergence.explanation}" if m.convergence else ""
        _print(f"The ring has {m.status} after {m.turns_done} turns; {best}.{rule}")
    return 0


def _status(args: argparse.Namespace) -> int:
    from ..ring.lease import read_lease
    from ..ring.manifest import read_manifest
    from ..ring.status import describe_ring

    with open_server(args) as t:
        t.connect()
        m = read_manifest(t)
        lease = read_lease(t)
        trust = check_trust(args, m)
        if args.json:
            doc = {
                "manifest": json.loads(m.to_bytes()),
                "next_site": m.next_site,
                "lease": asdict(lease.lease) if lease and lease.lease else None,
                "trust": trust,
            }
            print(json.dumps(doc, indent=1))  # JSON escapes every control character
        else:
            _print(describe_ring(m, lease, t.describe(), args.history) + "\n" + trust["summary"])
    return 0


def _print(text: str) -> None:
    """Server strings reach the terminal without escapes or control characters."""
    from ..errors import printable

    print(printable(text, keep_newlines=True))


def _fetch(args: argparse.Namespace) -> int:
    from ..ring.codec import decode_weights
    from ..ring.manifest import read_manifest
    from ..ring.server import fetch_weights
    from ..ring.trust import TrustStore

    with open_server(args) as t:
        t.connect()
        m = read_manifest(t)
        pin, where = given_pin(args, m)
        if m.config.signers and not m.legacy and pin is None:
            raise ConfigError(
                f"Nothing was fetched: ring fetch checks the signatures, but there is {no_pin_text(args, m, where)}."
            )
        store = TrustStore(trust_dir(args, args.site)) if args.site and not args.signers else None
        data, ref, manifest = fetch_weights(t, args.which, store, not args.allow_unsigned, pin)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    from ..training.ring_turn import is_hematoma_model

    if args.raw or not is_hematoma_model(manifest.model_id):
        atomic_write_bytes(args.out, data)  # as the ring holds it (e.g. a toy test ring)
    else:
        # A model weights file that predict and evaluate load directly.
        from ..training.ring_turn import save_ring_weights_as_model

        best = manifest.best
        metrics = {"val_loss": best.val_loss} if best and best.weights.version == ref.version else {}
        save_ring_weights_as_model(
            decode_weights(data, f"weights version {ref.version}"),
            manifest.model_id or "",
            args.out,
            version=f"ring version {ref.version} from site {ref.site}",
            metrics=metrics,
        )
    _print(f"Wrote weights version {ref.version} from site {ref.site} (sha256 {ref.sha256[:12]}) to {args.out}.")
    return 0


def _audit(args: argparse.Namespace) -> int:
    from ..ring.server_audit import audit_server
    from ..turn_trainers import network_shapes

    with open_server(args) as t:
        t.connect()
        report = audit_server(t, network_shapes)
    if args.json:
        print(json.dumps(report.to_json(), indent=1))
    else:
        _print(report.describe())
    return 1 if report.flagged else 0
