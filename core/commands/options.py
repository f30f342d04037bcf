"""Option groups that several commands share, as argparse parent parsers, so
each is written (and documented in ``--help``) once."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path

from ..resources import list_presets

URL_HELP = "the ring folder: sftp://user@host:port/path, sftp://host/~/path or a folder path"


def ring_server() -> argparse.ArgumentParser:
    """``--server URL`` and the SSH options of an ``sftp://`` server; read with
    :func:`open_server`."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--server", required=True, metavar="URL", help=URL_HELP)
    g = p.add_argument_group("SSH (sftp:// servers)")
    g.add_argument(
        "--identity",
        type=Path,
        metavar="KEYFILE",
        help="private key for the SSH login (default: ~/.ssh/config, ssh-agent, ~/.ssh/id_*)",
    )
    g.add_argument(
        "--known-hosts",
        type=Path,
        metavar="FILE",
        help="known_hosts file to check the server's host key against (default ~/.ssh/known_hosts)",
    )
    g.add_argument(
        "--trust-host-key", action="store_true", help="accept an unknown server host key and record it in known_hosts"
    )
    g.add_argument(
        "--ssh-config", type=Path, metavar="FILE", help="SSH config for host aliases (default ~/.ssh/config)"
    )
    return p


def open_server(args: argparse.Namespace):
    """The ring transport named by the :func:`ring_server` options (not yet connected)."""
    from ..ring.connect import open_transport
    from ..ring.transport_sftp import SshOptions

    ssh = SshOptions(
        identity=args.identity,
        known_hosts=args.known_hosts,
        trust_host_key=args.trust_host_key,
        ssh_config=args.ssh_config,
        passphrase=key_passphrase("HEMARELAY_SSH_PASSPHRASE", args.identity),
    )
    return open_transport(args.server, ssh)


def key_passphrase(env: str, key: Path | None) -> str | None:
    """A key's passphrase from ``env`` (or HEMARELAY_KEY_PASSPHRASE); asked on a terminal
    only when the key file is encrypted."""
    value = os.environ.get(env) or os.environ.get("HEMARELAY_KEY_PASSPHRASE")
    if value or key is None or not sys.stdin.isatty():
        return value or None
    try:
        data = Path(key).expanduser().read_bytes()[:16384]
    except OSError:
        return None
    if b"ENCRYPTED" not in data:  # PEM keys say so; OpenSSH keys tell when loaded without one
        from cryptography.hazmat.primitives.serialization import load_ssh_private_key

        try:
            load_ssh_private_key(data, None)
            return None
        except TypeError:
            pass
        except (ValueError, Exception):  # noqa: BLE001 - not a key we can judge: let the loader say
            return None
    return getpass.getpass(f"Passphrase for {key}: ") or None


# The default is core.training.config.DEFAULT_PRESET (not imported here: that
# module loads torch; tests/core/test_cli.py checks the two agree).
PRESET_HELP = f"named settings: {', '.join(list_presets())} (default: default, the product recipe)"


def training_settings(config_file: bool = True) -> argparse.ArgumentParser:
    """``--preset``, ``--config`` (unless ``config_file`` is False) and ``--set
    KEY=VALUE`` (as ``args.overrides``), in that order of precedence; read with
    ``core.training.config.load_config``."""
    p = argparse.ArgumentParser(add_help=False)
    add_training_settings(p.add_argument_group("training settings"), config_file)
    return p


def add_training_settings(group: argparse._ActionsContainer, config_file: bool = True) -> None:
    """The options of :func:`training_settings`, added to ``group`` (a command
    whose settings sit in a group of its own, e.g. ``flare job``)."""
    group.add_argument("--preset", default=None, help=PRESET_HELP)
    if config_file:
        group.add_argument(
            "--config", type=Path, default=None, metavar="FILE.toml", help="settings file applied over the preset"
        )
    group.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        dest="overrides",
        help="one setting, applied last (repeatable), e.g. --set patience=5",
    )


def cycle_options(p: argparse.ArgumentParser) -> None:
    """How the ring cycles and when it stops (:class:`core.ring.config.CycleSettings`):
    the same options for ``ring init`` and ``flare job``; read with :func:`cycle_settings`."""
    from ..ring.config import ORDER_ALIASES, ORDERS, CycleSettings

    d = CycleSettings()
    g = p.add_argument_group("how the ring cycles and when it stops")
    g.add_argument(
        "--order",
        choices=[*ORDERS, *ORDER_ALIASES],
        default=d.order,
        help="fixed: the listed order every round; shuffle (or random): a seeded new order every "
        "round, never the same site twice in a row",
    )
    g.add_argument("--seed", type=int, default=d.seed, help="shuffle and weight-initialisation seed")
    g.add_argument(
        "--patience",
        type=int,
        default=d.patience,
        help=f"turns without a validation improvement before the ring stops (default {d.patience})",
    )
    g.add_argument("--min-delta", type=float, default=d.min_delta, help="smallest val-loss drop that counts")
    g.add_argument(
        "--epochs-per-turn",
        type=int,
        default=d.epochs_per_turn,
        metavar="K",
        help="epochs each turn trains (a suggestion: every site caps it)",
    )


def cycle_settings(args: argparse.Namespace):
    """The :func:`cycle_options` as a validated :class:`core.ring.config.CycleSettings`."""
    from ..ring.config import CycleSettings, order_named

    return CycleSettings(
        order=order_named(args.order),
        seed=args.seed,
        patience=args.patience,
        min_delta=args.min_delta,
        epochs_per_turn=args.epochs_per_turn,
    ).validate()
