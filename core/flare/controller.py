"""The NVFlare server workflow: cyclic weight transfer with the paper's stopping rule.

NVFlare's own ``CyclicController`` runs a fixed number of rounds; the paper
stops when the validation loss, counted over every site's turns, has not
improved for ``patience`` turns. :class:`HematomaCyclic` is a ModelController
that sends the weights to one site at a time, in the SSH ring's order (fixed,
or ``random``: the ring's seeded shuffle per round, never the same site twice
in a row; ``Manifest.next_site``), applies the ring's own rule (``core.ring.convergence.global_patience``)
to each turn's validation loss, and publishes the best and latest weights as
model files (:mod:`core.flare.result`).

It accepts from a site only what the ring accepts: a dict of numeric arrays
with the network's names and shapes, and a finite ``val_loss``. Anything else
stops the job (a site sending more than weights and scalars is a fault).

The server needs ``hematoma-relay[flare]`` installed (the job lists ``core`` as
an installed application package, so no code travels in the job folder).
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from nvflare.app_common.abstract.fl_model import FLModel, ParamsType
from nvflare.app_common.workflows.model_controller import ModelController

from ..errors import printable
from ..ring.config import CycleSettings, RingConfig, order_named
from ..ring.convergence import global_explanation, global_patience
from ..ring.manifest import new_manifest
from ..turn_trainers import network_shapes
from .result import BEST, LATEST, RESULT_DIR, FlareRecord, FlareTurn, PublishedWeights, provenance

# Keys of FLModel.meta the server sends; the client reads them (core.flare.client).
META_TURN = "hemarelay_turn"
META_SEED = "hemarelay_seed"
META_EPOCHS = "hemarelay_epochs"
_CYCLE = CycleSettings()  # the defaults (core.ring.config: the one definition)


class ResultRefused(Exception):
    pass


# What NVFlare itself may add to a site's result (FLMetaKey); anything else a site sends is refused.
_META_COUNTS = {"NUM_STEPS_CURRENT_ROUND", "start_round", "current_round", "total_rounds"}
_META_SITE = {"site_name", "client_name"}  # must name the site that sent it


def check_site_result(
    result: FLModel, shapes: dict[str, tuple], sent_meta: dict | None = None, site: str = "", job_id: str = ""
) -> tuple[dict, float]:
    """(weights, val_loss) from a site's result, or ResultRefused saying why: numeric
    arrays of the network's names and shapes (the first result too: ``shapes`` is the
    network's, :func:`core.turn_trainers.network_shapes`), a finite ``val_loss``, and
    in its meta only NVFlare's own bookkeeping (counts, this job, this site)."""
    params = result.params
    if not isinstance(params, dict) or not params:
        raise ResultRefused("the result holds no weights")
    weights = {}
    for name, value in params.items():
        arr = np.asarray(value)
        if not isinstance(name, str) or arr.dtype.kind not in "fiu":
            raise ResultRefused(f"entry {printable(repr(name))[:60]} is not a numeric weight array")
        weights[name] = arr
    got = {k: tuple(v.shape) for k, v in weights.items()}
    if got != shapes:
        extra = sorted(set(got) ^ set(shapes)) or sorted(k for k in got if got[k] != shapes[k])
        raise ResultRefused(f"its weights do not match the network's ({printable(', '.join(extra[:3]))[:200]})")
    metrics = result.metrics or {}
    for key, value in (result.meta or {}).items():
        if key == "initial_metrics" and value == metrics:
            continue  # NVFlare's DXO envelope repeats the metrics here
        if key == "props" and value == sent_meta:
            continue  # added on the server: the task's own meta, as this controller sent it
        if key in _META_COUNTS and (value is None or isinstance(value, int) and not isinstance(value, bool)):
            continue
        if (key in _META_SITE and value == site) or (key == "job_id" and value == job_id):
            continue
        raise ResultRefused(f"its meta entry {printable(repr(key))[:60]} is not NVFlare's own bookkeeping")
    if set(metrics) != {"val_loss"}:
        sent = printable(str(sorted(map(str, metrics))))[:200]
        raise ResultRefused(f"it sent metrics {sent}; only val_loss is accepted")
    val = metrics["val_loss"]
    if isinstance(val, bool) or not isinstance(val, (int, float)) or not math.isfinite(val):
        raise ResultRefused(f"val_loss = {printable(repr(val))[:40]} is not a finite number")
    return weights, float(val)


class HematomaCyclic(ModelController):
    # NVFlare's job writer records an argument only when an attribute of the same
    # name holds it; record every one, defaults included, so the job says it all.
    _always_serialize_args = (
        "sites",
        "model_id",
        "job_name",
        "max_rounds",
        "patience",
        "min_delta",
        "order",
        "seed",
        "epochs_per_turn",
        "turn_timeout",
    )

    def __init__(
        self,
        sites: list,
        model_id: str,
        job_name: str,
        max_rounds: int = 20,
        patience: int = _CYCLE.patience,
        min_delta: float = _CYCLE.min_delta,
        order: str = _CYCLE.order,
        seed: int = _CYCLE.seed,
        epochs_per_turn: int = _CYCLE.epochs_per_turn,
        turn_timeout: int = 0,
    ) -> None:
        # NVFlare records a controller by its arguments: one per setting, read into the ring's
        # own CycleSettings here ("random" is the ring's "shuffle").
        super().__init__(persistor_id="")  # no persistor: the first site initialises, as in the ring
        cycle = CycleSettings(order_named(order), seed, patience, min_delta, epochs_per_turn)
        self.ring = RingConfig.of(tuple(sites), cycle).validate()
        self.sites, self.model_id, self.job_name, self.max_rounds = list(sites), model_id, job_name, max_rounds
        self.patience, self.min_delta, self.order, self.seed = patience, min_delta, order, seed
        self.epochs_per_turn = epochs_per_turn
        self.record = FlareRecord(
            job_name=job_name,
            job_id="",
            model_id=model_id,
            sites=list(sites),
            order=order,
            seed=seed,
            max_rounds=max_rounds,
            patience=patience,
            min_delta=min_delta,
            epochs_per_turn=epochs_per_turn,
        )
        self.turn_timeout = turn_timeout

    # ------------------------------------------------------------- publishing
    def _out_dir(self) -> Path:
        return Path(self.get_run_dir()) / RESULT_DIR

    def _publish(self, weights: dict, turn: FlareTurn, file: str) -> PublishedWeights:
        import torch

        from ..model.weights import read_meta
        from ..training.ring_turn import save_ring_weights_as_model

        version, source = provenance(self.record, turn)
        path = self._out_dir() / file
        save_ring_weights_as_model(
            {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in weights.items()},
            self.model_id,
            path,
            version=version,
            metrics={"val_loss": turn.val_loss},
            source=source,
        )
        return PublishedWeights(file, turn.turn, turn.round, turn.site, turn.val_loss, read_meta(path).sha256)

    def _fail(self, reason: str) -> None:
        """Stop the job; the record says why and keeps the best weights so far."""
        self.record.status, self.record.explanation = "failed", reason
        self.record.write(self._out_dir())
        self.panic(reason)

    # -------------------------------------------------------------------- run
    def run(self) -> None:
        rec, ring = self.record, self.ring
        rec.job_id = str(self.fl_ctx.get_job_id())
        connected = {c.name for c in self.engine.get_clients()}
        missing = [s for s in ring.sites if s not in connected]
        if missing:
            self._fail(
                f"sites {', '.join(missing)} of this job are not connected "
                f"(connected: {', '.join(sorted(connected))}); NVFlare site names must be "
                "the job's --sites."
            )
            return
        n = len(ring.sites)
        # Whose turn it is: the ring's own answer (Manifest.next_site after `turn` turns),
        # so fixed and random orders follow the SSH ring's one definition of the order.
        ring_state = new_manifest(ring)
        params: dict = {}
        network = network_shapes(self.model_id)
        if network is None:
            self._fail(f"this server does not know the network '{self.model_id}' the job trains")
            return
        shapes = network.weights  # every result, the first one too, must be the network's
        best = None
        counter = 0
        rec.status = "max_rounds"
        for turn in range(rec.max_rounds * n):
            if self.abort_signal.triggered:
                rec.status, rec.explanation = "stopped", "the job was aborted"
                break
            rnd, site = turn // n, replace(ring_state, turns_done=turn).next_site
            task = FLModel(
                params_type=ParamsType.FULL,
                params=params,
                current_round=rnd,
                total_rounds=rec.max_rounds,
                meta={META_TURN: turn, META_SEED: ring.seed, META_EPOCHS: ring.epochs_per_turn},
            )
            self.info(f"Turn {turn + 1} (round {rnd + 1}): site {site}")
            t0 = time.monotonic()
            results = self.send_model_and_wait(targets=[site], data=task, timeout=self.turn_timeout)
            if not results:
                self._fail(f"site {site} returned no result for turn {turn + 1}")
                return
            try:
                weights, val_loss = check_site_result(results[0], shapes, task.meta, site, rec.job_id)
            except ResultRefused as exc:
                self._fail(f"site {site}, turn {turn + 1}: result refused: {exc}")
                return
            self.info(
                f"Turn {turn + 1}: received {len(weights)} weight arrays, metrics "
                f"{sorted(results[0].metrics or {})}, meta {sorted((results[0].meta or {}).items())}"
            )
            improved, counter = global_patience(best, counter, val_loss, ring.min_delta)
            record = FlareTurn(turn, rnd, site, val_loss, improved, counter, round(time.monotonic() - t0, 3))
            rec.turns.append(record)
            if improved:
                best = val_loss
                rec.best = self._publish(weights, record, BEST)
            rec.latest = self._publish(weights, record, LATEST)
            params = weights
            self.info(
                f"Turn {turn + 1}: site {site} val loss {val_loss:.6g} "
                f"({'improved' if improved else f'no improvement, {counter}/{ring.patience}'})"
            )
            if counter >= ring.patience:
                rec.status = "converged"
                rec.explanation = global_explanation(ring.patience, best, ring.min_delta)
                rec.write(self._out_dir())
                break
            rec.write(self._out_dir())
        if rec.status == "max_rounds":
            rec.explanation = (
                f"the job reached its limit of {rec.max_rounds} rounds before the patience rule stopped it."
            )
        rec.write(self._out_dir())
        self.info(f"Hematoma Relay cyclic job {rec.status}: {rec.explanation}")
