"""What a ring is set up with, and whose turn it is.

:class:`CycleSettings` is the one definition of how a ring of sites cycles and
when it stops (order, seed, patience, minimum improvement, epochs per turn):
the SSH ring's :class:`RingConfig` and the NVFlare job (core/flare) both take
theirs from it, and the command line offers the same options for both
(:func:`core.commands.options.cycle_options`). The order of the sites is
``fixed`` (as listed) or ``shuffle`` (a seeded new order every round, never
the same site twice in a row); NVFlare users may say ``random`` for it.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Literal

from ..errors import ConfigError
from .names import SITE_RE

Order = Literal["fixed", "shuffle"]
Rule = Literal["global", "per-site"]
ORDERS: tuple[str, ...] = ("fixed", "shuffle")
ORDER_ALIASES = {"random": "shuffle"}  # the word NVFlare users know for it
START_FROM = ("scratch", "default")


def order_named(word: str) -> Order:
    """``fixed`` or ``shuffle`` for what a person typed (``random`` is ``shuffle``)."""
    order = ORDER_ALIASES.get(word, word)
    if order not in ORDERS:
        raise ConfigError(f"Ring order '{word}': use fixed or shuffle.")
    return order  # type: ignore[return-value]


@dataclass(frozen=True)
class CycleSettings:
    """How the ring cycles and when it stops: shared by the SSH ring and the NVFlare job."""

    order: Order = "fixed"  # fixed: the listed order; shuffle: a seeded permutation per round
    seed: int = 0  # shuffle order and the first turn's weight initialisation
    patience: int = 10  # turns without an improvement before the ring has converged
    min_delta: float = 1e-4  # an improvement must lower the best val loss by more than this
    epochs_per_turn: int = 1  # the ring's suggestion; each site caps it (SiteOptions)

    def validate(self) -> "CycleSettings":
        if self.order not in ORDERS:
            raise ConfigError(f"Ring order '{self.order}': use fixed or shuffle.")
        if self.patience < 1 or self.epochs_per_turn < 1:
            raise ConfigError("Patience and epochs per turn must be at least 1.")
        if not (self.min_delta >= 0 and math.isfinite(self.min_delta)):
            raise ConfigError("The minimum improvement must be a number >= 0.")
        return self


_CYCLE = CycleSettings()
MAX_EPOCHS_PER_TURN = 20  # a site's default cap on what a ring (or an NVFlare job) may ask


def capped_epochs(suggested: object, own: int | None, cap: int) -> int:
    """The epochs a site trains for a turn: its own setting when it has one, else what
    the ring (or the NVFlare job) suggests, never above the site's cap: a server cannot
    make a site train for days on crafted weights. A suggestion that is not a whole
    number counts as 1."""
    if own:
        return own
    if isinstance(suggested, bool) or not isinstance(suggested, (int, float)) or suggested != suggested:
        return 1
    return int(max(1, min(suggested, cap)))


def check_sites(sites: tuple[str, ...]) -> None:
    if not sites:
        raise ConfigError("A ring needs at least one site.")
    for s in sites:
        if not SITE_RE.match(s):
            raise ConfigError(
                f"Site name '{s}': use 1-32 letters, digits, '-' or '_' "
                f"(it is stored on the server: no patient or path information)."
            )
    if len(set(sites)) != len(sites):
        raise ConfigError(f"Site names must be unique: {', '.join(sites)}.")


@dataclass(frozen=True)
class RingConfig:
    """Set once by ``ring init``; every site follows it. The cycle's fields are
    :class:`CycleSettings`' (kept flat: this is the manifest's ``config`` object)."""

    sites: tuple[str, ...]
    order: Order = _CYCLE.order
    seed: int = _CYCLE.seed
    patience: int = _CYCLE.patience
    min_delta: float = _CYCLE.min_delta
    convergence: Rule = "global"  # global: one counter over every turn (the paper); per-site: each site's own
    max_turns: int | None = None  # stop after this many turns whatever the losses
    epochs_per_turn: int = _CYCLE.epochs_per_turn
    reset_optimizer: bool = False  # True: every turn starts a fresh optimizer (the paper's later code)
    lease_ttl_s: float = 600.0  # a lease not renewed for this long may be broken
    clock_skew_s: float = 60.0  # tolerance between site clocks when reading another site's expiry
    keep_versions: int = 5  # weights versions kept on the server besides the best
    # What the first turn trains from: "scratch" (weights drawn from ``seed``, the
    # paper) or "default" (the model shipped with the program; sites check its sha256).
    start_from: str = "scratch"
    # Each member's turn-signing public key ("ssh-ed25519 AAAA..."), fixed at ``ring init``
    # and pinned by every site at first contact (see signing.py). Empty: an unsigned ring.
    signers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, sites: tuple[str, ...], cycle: CycleSettings, **rest) -> "RingConfig":
        return cls(
            sites=tuple(sites),
            order=cycle.order,
            seed=cycle.seed,
            patience=cycle.patience,
            min_delta=cycle.min_delta,
            epochs_per_turn=cycle.epochs_per_turn,
            **rest,
        )

    @property
    def cycle(self) -> CycleSettings:
        return CycleSettings(self.order, self.seed, self.patience, self.min_delta, self.epochs_per_turn)

    def validate(self) -> "RingConfig":
        check_sites(self.sites)
        self.cycle.validate()
        if self.convergence not in ("global", "per-site"):
            raise ConfigError(f"Convergence rule '{self.convergence}': use global or per-site.")
        if self.keep_versions < 1:
            raise ConfigError("The number of kept versions must be at least 1.")
        if self.max_turns is not None and self.max_turns < 1:
            raise ConfigError("The maximum number of turns must be at least 1.")
        if not (self.lease_ttl_s > 0 and self.clock_skew_s >= 0):
            raise ConfigError("The lease time must be > 0 s and the clock skew >= 0 s.")
        if self.start_from not in START_FROM:
            raise ConfigError(f"Start from '{self.start_from}': use {' or '.join(START_FROM)}.")
        if self.signers:
            from .keys import check_public_key

            if set(self.signers) != set(self.sites):
                raise ConfigError(
                    f"Every site needs exactly one signing key: keys given for "
                    f"{', '.join(sorted(self.signers)) or 'none'}, sites are "
                    f"{', '.join(self.sites)}."
                )
            for s, key in self.signers.items():
                check_public_key(key, f"the signing key of site {s}")
        return self

    def check(self, where: str) -> None:
        """For :func:`core.ring.schema.decode`: a config read off the server."""
        try:
            self.validate()
        except ConfigError as exc:
            raise ValueError(str(exc)) from None


# -- whose turn it is: the ring order, fixed or a seeded shuffle per round --


def round_order(config: RingConfig, round_index: int) -> list[str]:
    """The sites in the order they train during one round (each site once)."""
    sites = list(config.sites)
    if config.order == "fixed" or len(sites) == 1:
        return sites
    previous_last = None
    for r in range(round_index + 1):
        order = sites[:]
        random.Random(f"{config.seed}:{r}").shuffle(order)
        # The same site twice in a row (end of one round, start of the next)
        # would be a turn without a transfer: swap it one place later.
        if order[0] == previous_last:
            order[0], order[1] = order[1], order[0]
        previous_last = order[-1]
    return order


def site_for_turn(config: RingConfig, turn: int) -> str:
    """The site that takes turn ``turn`` (0-based) of the ring."""
    n = len(config.sites)
    return round_order(config, turn // n)[turn % n]
