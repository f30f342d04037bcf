"""Whose turn it is: the ring order, fixed or a seeded shuffle per round."""
from __future__ import annotations

import random

from .manifest import RingConfig


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
    n = len(config.sites)
    return round_order(config, turn // n)[turn % n]
