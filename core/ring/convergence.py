"""Global convergence of the ring: patience over the per-turn validation losses.

The paper's rule (``global``): one counter over every turn's validation loss,
whichever site produced it; an improvement (a loss below the best by more than
``min_delta``) resets it, ``patience`` turns without one end the ring. Each site
computes its loss on its own validation split, so one site's numbers can
dominate that counter; the ``per-site`` rule instead keeps a counter per site
(against that site's own best) and stops when every site has run out of
patience. Both are recorded per site either way, and ``max_turns`` caps the run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Protocol

from .config import RingConfig
from .records import BestWeights, Convergence, SiteSummary, TurnRecord


class RingState(Protocol):
    """What the rule reads of a ring: a :class:`~core.ring.manifest.Manifest`, or a
    :class:`Tally` replayed from signed records."""

    config: RingConfig
    best: BestWeights | None
    patience_counter: int
    per_site: dict[str, SiteSummary]
    turns_done: int


@dataclass(frozen=True)
class TurnVerdict:
    improved: bool  # under the configured rule
    patience_counter: int  # the counter the configured rule watches, after this turn
    global_improved: bool  # below the global best (decides the best weights in both rules)
    global_counter: int
    per_site: dict[str, SiteSummary]
    convergence: Convergence | None  # set when this turn ends the ring


def global_patience(best: float | None, counter: int, val_loss: float, min_delta: float) -> tuple[bool, int]:
    """The paper's rule for one turn: (improved, counter after it). ``best`` is the
    lowest validation loss so far (None before the first turn); an improvement
    must lower it by more than ``min_delta`` and resets the counter. The SSH ring
    and the NVFlare controller (core/flare) both call this."""
    improved = best is None or val_loss < best - min_delta
    return improved, 0 if improved else counter + 1


def global_explanation(patience: int, best: float, min_delta: float) -> str:
    return (
        f"{patience} turns in a row without lowering the best validation loss "
        f"({best:.6g}) by more than {min_delta:g}, counted over every site's turns "
        f"(the paper's rule; each site's loss comes from its own validation split)."
    )


def judge_turn(m: RingState, site: str, val_loss: float, at: str) -> TurnVerdict:
    """Apply one turn's validation loss to the manifest's counters (pure)."""
    cfg = m.config
    best = m.best.val_loss if m.best else None
    global_improved, global_counter = global_patience(best, m.patience_counter, val_loss, cfg.min_delta)

    mine = m.per_site.get(site, SiteSummary())
    site_improved = mine.best_val_loss is None or val_loss < mine.best_val_loss - cfg.min_delta
    per_site = dict(m.per_site)
    per_site[site] = SiteSummary(
        turns=mine.turns + 1,
        last_val_loss=val_loss,
        best_val_loss=val_loss if site_improved else mine.best_val_loss,
        patience_counter=0 if site_improved else mine.patience_counter + 1,
    )

    turns_done = m.turns_done + 1
    if cfg.convergence == "global":
        improved, counter = global_improved, global_counter
    else:
        improved, counter = site_improved, per_site[site].patience_counter
    best_now = val_loss if global_improved else best
    convergence = None
    if cfg.convergence == "global" and global_counter >= cfg.patience:
        convergence = Convergence(
            "global-patience", turns_done, at, global_explanation(cfg.patience, best_now, cfg.min_delta)
        )
    elif cfg.convergence == "per-site" and all(
        per_site.get(s, SiteSummary()).turns > 0 and per_site[s].patience_counter >= cfg.patience for s in cfg.sites
    ):
        convergence = Convergence(
            "per-site-patience",
            turns_done,
            at,
            f"every site had {cfg.patience} of its own turns in a row without lowering its own "
            f"best validation loss by more than {cfg.min_delta:g}.",
        )
    elif cfg.max_turns is not None and turns_done >= cfg.max_turns:
        convergence = Convergence(
            "max-turns",
            turns_done,
            at,
            f"the ring reached its limit of {cfg.max_turns} turns before the patience rule "
            f"({cfg.convergence}) stopped it.",
        )
    return TurnVerdict(improved, counter, global_improved, global_counter, per_site, convergence)


@dataclass(frozen=True)
class Tally:
    """The ring's bookkeeping as it follows from its turn records alone: what a site
    recomputes from the signed records instead of believing the manifest's copy."""

    config: RingConfig
    best: BestWeights | None = None
    patience_counter: int = 0
    per_site: dict[str, SiteSummary] = field(default_factory=dict)
    turns_done: int = 0
    convergence: Convergence | None = None

    @property
    def status(self) -> str:
        if self.convergence is None:
            return "running"
        return "stopped" if self.convergence.rule == "max-turns" else "converged"

    def after(self, verdict: TurnVerdict, record: TurnRecord) -> "Tally":
        val = float(record.metrics["val_loss"])
        return Tally(
            self.config,
            BestWeights(val, record.weights_ref()) if verdict.global_improved else self.best,
            verdict.global_counter,
            verdict.per_site,
            self.turns_done + 1,
            verdict.convergence,
        )


def start_tally(config: RingConfig) -> Tally:
    return Tally(config, per_site={s: SiteSummary() for s in config.sites})


def replay(config: RingConfig, records: Iterable[TurnRecord]) -> tuple[Tally, list[TurnVerdict]]:
    """The rule applied to ``records`` in order, from a new ring: the tally after them
    and each record's verdict (what its ``improved`` and ``patience_counter`` must say)."""
    tally, verdicts = start_tally(config), []
    for r in records:
        verdict = judge_turn(tally, r.site, float(r.metrics.get("val_loss", float("nan"))), r.finished_at)
        verdicts.append(verdict)
        tally = tally.after(verdict, r)
    return tally, verdicts
