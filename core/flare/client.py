"""This site's turn on NVFlare's Client API: exactly the SSH ring's turn.

The NVFlare client runs :func:`main` (through the job's ``client_script.py``).
It trains on the cases of this site's data folder that are approved for
training (:func:`core.site.training.approved_cases`, the desktop app's rule),
with the ring's trainer (:class:`core.training.ring_turn.HematomaTurnTrainer`:
same presets, patch sampler and validation loss; patches are built once and
reused for every turn this site takes). It sends back the weights and the
validation loss, nothing else: no optimizer state (every turn starts a fresh
Adam, as the ring does with ``--reset-optimizer``), no counts, no names.
"""

from __future__ import annotations

import argparse
import logging
import time

log = logging.getLogger(__name__)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="client_script.py")
    p.add_argument("--preset", default=None)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    return p.parse_args(argv)


def build_trainer(site: str, preset: str | None, overrides: list[str]):
    from ..errors import InputError
    from ..site.training import approved_cases
    from ..training.config import load_config
    from ..training.ring_turn import HematomaTurnTrainer
    from .sites import site_data_folder

    folder = site_data_folder(site)
    cases = approved_cases(folder)
    if not cases:
        raise InputError(
            f"NVFlare site {site}: no case in its data folder is approved for training; "
            "review the masks and mark cases 'approved for training' first."
        )
    log.info("site %s: %d approved case(s)", site, len(cases))
    return HematomaTurnTrainer(folder, load_config(preset, None, overrides), cases=cases)


def _count(meta: dict, key: str) -> int:
    """A whole number the server sent (the turn, the seed); InputError otherwise."""
    from ..errors import InputError

    value = meta.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**31:
        raise InputError(f"The NVFlare server sent {key} = {str(value)[:40]!r}, not a count; no turn was trained.")
    return value


def take_turn(trainer, site: str, params: dict, meta: dict, max_epochs: int | None = None):
    """One turn from what the server sent: (weights, val_loss). The epochs are the job's
    suggestion within this site's cap (``HEMARELAY_FLARE_MAX_EPOCHS``, as the SSH ring's
    ``--max-epochs-per-turn``: :func:`core.ring.config.capped_epochs`)."""
    import torch

    from ..progress import NEVER_CANCELLED, drive
    from ..ring.config import capped_epochs
    from ..ring.trainer import TurnInput, check_result
    from .controller import META_EPOCHS, META_SEED, META_TURN
    from .sites import site_max_epochs

    weights = {k: torch.as_tensor(v) for k, v in params.items()} or None  # empty: the first turn
    cap = site_max_epochs() if max_epochs is None else max_epochs
    inp = TurnInput(
        weights=weights,
        optimizer_state=None,
        epochs=capped_epochs(meta.get(META_EPOCHS), None, cap),
        seed=_count(meta, META_SEED),
        turn=_count(meta, META_TURN),
        site=site,
    )
    result = check_result(drive(trainer.train_turn(inp, NEVER_CANCELLED)), trainer.model_id)
    return result.weights, float(result.metrics["val_loss"])


def main(argv: list[str] | None = None) -> None:
    import nvflare.client as flare
    from nvflare.app_common.abstract.fl_model import FLModel

    args = parse_args(argv)
    flare.init()
    site = flare.get_site_name()
    trainer = build_trainer(site, args.preset, args.set)
    while flare.is_running():
        task = flare.receive()
        if task is None:
            break
        t0 = time.monotonic()
        weights, val_loss = take_turn(trainer, site, task.params or {}, task.meta or {})
        # stays in this site's log (bench/bench_flare_overhead.py reads it)
        log.info(
            "site %s turn %s: val loss %.6g, training %.3f s",
            site,
            (task.meta or {}).get("hemarelay_turn"),
            val_loss,
            time.monotonic() - t0,
        )
        flare.send(FLModel(params=weights, metrics={"val_loss": val_loss}))
