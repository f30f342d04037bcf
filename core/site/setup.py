"""A site's set-up: its name in the ring, its cases, its server, its training preset.

With no server configured (the default) the ring is an embedded local folder
in the user's state directory, created on first use as a ring of one (this
site, named "local" until the user names it), so a single hospital can train
and use the model without any server.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConfigError
from ..ring.errors import RingStateError
from ..ring.manifest import SITE_RE, START_FROM, Manifest, RingConfig, read_manifest
from ..ring.transport import ServerLocation, Transport, parse_server_url
from ..user_dirs import state_dir

if TYPE_CHECKING:  # imported where used: the SFTP client and the ring server (torch) stay out
    from ..ring.signing import TurnSigner  # of the desktop application's start-up
    from ..ring.transport_sftp import SshOptions

LOCAL_RING = "local-ring"


@dataclass(frozen=True)
class SiteSetup:
    site: str = "local"  # this site's name in the ring (stored on the server: no patient data)
    data_folder: str = ""  # the site's cases (the worklist folder)
    server: str = ""  # sftp://user@host:port/path or a shared folder; "" = embedded local ring
    key_file: str = ""  # SSH private key; "" = ssh config / agent / ~/.ssh/id_*
    known_hosts: str = ""  # "" = ~/.ssh/known_hosts
    preset: str = "default"  # training preset (core/resources/presets): the product recipe
    overrides: tuple[str, ...] = ()  # extra "key=value" training settings
    keep_taking_turns: bool = False  # train automatically whenever it is this site's turn
    poll_s: float = 30.0  # how often the background sync reads the server
    epochs_per_turn: int | None = None  # None: the ring's own setting (within the cap below)
    # The site decides (the server's settings are suggestions within these caps):
    max_epochs_per_turn: int = 20
    max_auto_turns_per_hour: int = 2  # "Keep taking my turns" trains at most this often
    share_optimizer: bool = False  # True: Adam's moments go to the next site too (opt-in)
    # Signed turns: this site's Ed25519 key ("" = created in the state folder on first use);
    # rings without signing keys are refused unless allowed here.
    signing_key: str = ""
    allow_unsigned: bool = False
    # What the embedded local ring's first turn trains from: "default" (the model shipped
    # with the program, so the ring improves on it) or "scratch" (weights drawn from the
    # seed, the paper). A server ring's start is its coordinator's choice (ring init).
    start_from: str = "default"

    @property
    def configured(self) -> bool:
        return bool(self.site)

    @property
    def is_local(self) -> bool:
        return not self.server.strip()

    def validated(self) -> "SiteSetup":
        if self.site and not SITE_RE.match(self.site):
            raise ConfigError(
                f"Site name '{self.site}': use 1-32 letters, digits, '-' or '_' "
                "(it is stored on the server: no patient or path information)."
            )
        if not (2.0 <= self.poll_s <= 3600.0):
            raise ConfigError(f"Sync interval {self.poll_s:g} s is outside 2 s to 1 hour.")
        if self.key_file and not Path(self.key_file).expanduser().is_file():
            raise ConfigError(f"The SSH key file {self.key_file} does not exist.")
        if self.server.strip():
            parse_server_url(self.server.strip())  # raises ConfigError with the reason
        if self.epochs_per_turn is not None and self.epochs_per_turn < 1:
            raise ConfigError("Epochs per turn must be at least 1.")
        if not (1 <= self.max_epochs_per_turn <= 1000):
            raise ConfigError("The cap on epochs per turn must be from 1 to 1000.")
        if not (0 <= self.max_auto_turns_per_hour <= 60):
            raise ConfigError("The cap on automatic turns per hour must be from 0 to 60.")
        from ..training.config import load_config

        load_config(self.preset, None, list(self.overrides))  # unknown preset/key: ConfigError
        check_local_start(self)
        return self

    def location(self) -> ServerLocation:
        if self.is_local:  # one embedded ring per site name: renaming the site starts a new one
            return parse_server_url(str(state_dir() / LOCAL_RING / (self.site or "local")))
        return parse_server_url(self.server.strip())

    def ssh_options(self, trust_host_key: bool = False) -> "SshOptions":
        from ..ring.transport_sftp import SshOptions

        return SshOptions(
            identity=Path(self.key_file).expanduser() if self.key_file else None,
            passphrase=os.environ.get("HEMARELAY_SSH_PASSPHRASE") or None,
            known_hosts=Path(self.known_hosts).expanduser() if self.known_hosts else None,
            trust_host_key=trust_host_key,
            connect_timeout_s=10.0,
            io_timeout_s=30.0,
        )

    def with_(self, **kw) -> "SiteSetup":
        return replace(self, **kw)


def check_local_start(setup: SiteSetup) -> None:
    """The embedded ring's start must suit the site's preset: raises ConfigError if not."""
    if setup.start_from not in START_FROM:
        raise ConfigError(f"Start from '{setup.start_from}': use {' or '.join(START_FROM)}.")
    if not setup.is_local or setup.start_from != "default":
        return
    from ..training.config import load_config

    why = default_model_mismatch(load_config(setup.preset, None, list(setup.overrides)))
    if why:
        raise ConfigError(
            f"This computer's ring would start from the default model, but {why}. "
            "Choose the 'default' training preset, or start the ring from scratch "
            "(Training > Site and server…)."
        )


def default_model_mismatch(config) -> str:
    """ "" when a ring trained with ``config`` (a TrainingConfig) can start from the shipped
    default model; else why not (another network or input grid), for the user."""
    from ..model.default import has_default_model, read_card

    if not has_default_model():
        return "this installation has no default model"
    card = read_card()
    grid = card.get("input", {})
    shipped = (card.get("architecture"), card.get("ds"), grid.get("in_plane_mm"), grid.get("context_slices"))
    mine = (config.architecture, config.ds, config.in_plane_mm, config.context_slices)
    if shipped != mine:
        return (
            f"the preset '{config.preset}' trains another network ({mine[0]}, ds {mine[1]}) than the "
            f"default model ({shipped[0]}, ds {shipped[1]})"
        )
    return ""


def check_data_folder(folder: str | Path) -> str:
    """The site data folder as the worklist reads it: raises InputError when it is missing or
    holds no cases; else a line saying what it holds (for the set-up dialog)."""
    from ..cases.worklist import scan_folder

    if not str(folder).strip():
        raise ConfigError(
            "Choose the site data folder: the cases this site reviews, trains on and evaluates new model versions on."
        )
    wl = scan_folder(folder)  # InputError: folder not found, or no cases in it
    approved = len(wl.approved())
    stale = sum(c.mask_changed for c in wl.cases)
    changed = f" ({stale} approved before their mask changed: approve them again)" if stale else ""
    return f"{len(wl.cases)} case(s) in {wl.folder}, {approved} approved for training{changed}."


def signing_key_path(setup: SiteSetup) -> Path:
    from ..ring.signing import default_key_path

    return Path(setup.signing_key).expanduser() if setup.signing_key else default_key_path(setup.site)


def site_signer(setup: SiteSetup) -> "TurnSigner":
    """This site's turn-signing key, created on first use."""
    import os

    from ..ring.signing import TurnSigner

    return TurnSigner.load_or_create(
        setup.site, signing_key_path(setup), os.environ.get("HEMARELAY_KEY_PASSPHRASE") or None
    )


def trust_dir(setup: SiteSetup) -> Path:
    """Where this site pins each ring's keys and its last verified head."""
    return state_dir() / "ring-trust" / (setup.site or "local")


def open_site_transport(setup: SiteSetup) -> Transport:
    """The ring server's transport (not yet connected). Unknown host keys are
    refused here: the user confirms them first (:mod:`core.site.hostkey`)."""
    from ..ring.connect import open_transport

    if not setup.configured:
        raise ConfigError("This site has no name yet: set it up under Training > Site and server.")
    return open_transport(setup.location(), setup.ssh_options())


def ensure_local_ring(setup: SiteSetup, t: Transport) -> Manifest:
    """With the embedded server, create the ring of one (this site) on first use."""
    try:
        return read_manifest(t)
    except RingStateError:
        if not setup.is_local:
            raise
    from ..ring.server import init_ring

    check_local_start(setup)  # before anything is created
    t.connect()
    try:  # the ring of one is signed with this site's own key
        signers = {setup.site: site_signer(setup).public}
        config = RingConfig(sites=(setup.site,), signers=signers, start_from=setup.start_from)
        return init_ring(t, config.validate())
    except RingStateError:  # created meanwhile by another window
        return read_manifest(t)
