"""A ring's state in words, for ``hemarelay ring status`` (the GUI shows the
manifest in its own tables)."""

from __future__ import annotations

from .lease import LeaseView
from .manifest import Manifest, RingEvent, TurnRecord


def _loss(v: float | None) -> str:
    return "-" if v is None else f"{v:.6g}"


def describe_ring(m: Manifest, lease: LeaseView | None, where: str, history: int = 10) -> str:
    cfg = m.config
    lines = [f"Ring {where} (id {m.ring_id[:8]}, manifest revision {m.revision})"]
    state = {"running": "running", "converged": "CONVERGED", "stopped": "STOPPED"}[m.status]
    lines.append(
        f"Status: {state}; {m.turns_done} turns done, round {m.round + 1}; sites "
        f"{', '.join(cfg.sites)} in {cfg.order} order; {cfg.epochs_per_turn} epoch(s) per turn; "
        f"optimizer {'reset every turn' if cfg.reset_optimizer else 'carried between sites'}."
    )
    if m.status == "running":
        holder = "free"
        if lease is not None:
            holder = (
                f"held by site {lease.lease.site} for turn {lease.lease.turn + 1} until {lease.lease.expires_at}"
                if lease.lease
                else "being written"
            )
        lines.append(f"Next turn: {m.turns_done + 1}, site {m.next_site}. Lease: {holder}.")
    if m.weights:
        lines.append(
            f"Latest weights: version {m.weights.version} from site {m.weights.site} (sha256 {m.weights.sha256[:12]})."
        )
    if m.best:
        lines.append(
            f"Best weights: version {m.best.weights.version} from site {m.best.weights.site}, "
            f"val loss {_loss(m.best.val_loss)}."
        )
    if cfg.signers:
        from .signing import key_fingerprint

        lines.append(
            "Turn-signing keys: " + ", ".join(f"{s} {key_fingerprint(k)}" for s, k in cfg.signers.items()) + "."
        )
    rule = (
        "global (one counter over every turn, as in the paper)"
        if cfg.convergence == "global"
        else "per-site (every site against its own best)"
    )
    lines.append(
        f"Convergence rule: {rule}; patience {cfg.patience}, min improvement {cfg.min_delta:g}"
        + (f", at most {cfg.max_turns} turns" if cfg.max_turns else "")
        + f"; global counter {m.patience_counter}/{cfg.patience}."
    )
    if m.convergence:
        lines.append(f"Decided by {m.convergence.rule} after turn {m.convergence.turn}: {m.convergence.explanation}")
    for s in cfg.sites:
        ps = m.per_site.get(s)
        if ps:
            lines.append(
                f"  site {s}: {ps.turns} turns, last val loss {_loss(ps.last_val_loss)}, own best "
                f"{_loss(ps.best_val_loss)}, own counter {ps.patience_counter}/{cfg.patience}"
            )
    if m.history:
        lines.append(f"History (last {min(history, len(m.history))} of {len(m.history)}):")
    for h in m.history[-history:]:
        if isinstance(h, TurnRecord):
            metrics = "  ".join(f"{k} {v:.6g}" for k, v in sorted(h.metrics.items()))
            extra = " improved" if h.improved else ""
            extra += f" (in place of {h.in_place_of})" if h.in_place_of else ""
            lines.append(
                f"  turn {h.turn + 1:>4} round {h.round + 1:>3} site {h.site:<8} v{h.version:<5} "
                f"{metrics}  train {h.train_s:.1f} s + {h.overhead_s:.2f} s transfer{extra}"
            )
        elif isinstance(h, RingEvent):
            lines.append(f"  {h.at}  {h.event}: {h.detail}")
    return "\n".join(lines)
