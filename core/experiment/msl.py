"""MSL: the ring run exactly as sites run it.

The ring is created on the server (a folder inside the experiment by default,
or the ``sftp://`` URL given), then each site's training runs in its own
process, ``python -m core ring turn --wait``, which is what a hospital runs.
This module only starts those processes, watches the manifest for progress,
and fetches the ring's best weights as a model file when the ring has
converged.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Generator

from ..errors import CancelledError, HemaRelayError
from ..progress import CancelToken, EtaClock, Progress
from ..ring.codec import decode_weights
from ..ring.connect import open_transport
from ..ring.manifest import Manifest, RingConfig, read_manifest
from ..ring.server import fetch_weights, init_ring
from ..training.ring_turn import save_ring_weights_as_model
from .plan import ExperimentPlan, ring_budget

ROOT = Path(__file__).resolve().parents[2]  # the folder holding the ``core`` package
STAGE = "MSL ring"
SIGNERS = "signers.txt"


def _signers_pin(logs: Path):
    """The keys this experiment made (its signers file), to check the ring's signatures against."""
    from ..ring.signing import read_signers_file
    from ..ring.trust import Pin

    path = logs / "keys" / SIGNERS
    return Pin.keys_only(read_signers_file(path)) if path.is_file() else None


def _read(url: str) -> Manifest | None:
    with open_transport(url) as t:
        t.connect()
        try:
            return read_manifest(t)
        except HemaRelayError:
            return None  # no ring there yet


def _site_command(plan: ExperimentPlan, site, audit: Path, signed: bool = True) -> list[str]:
    cmd = [
        *(plan.python or (sys.executable,)),
        "-m",
        "core",
        "ring",
        "turn",
        "--server",
        plan.server_url,
        "--site",
        site.name,
        "--data",
        str(site.data),
        "--wait",
        "--poll",
        str(plan.poll_s),
        "--audit-log",
        str(audit),
    ]
    # Every site of the experiment signs its turns with its own key (created with the ring).
    keys = audit.parent / "keys"
    cmd += ["--signing-key", str(keys / f"{site.name}.ed25519"), "--trust-dir", str(keys / f"trust-{site.name}")]
    if (keys / SIGNERS).is_file():  # the experiment made every key itself: it is the coordinator
        cmd += ["--trust-signers", str(keys / SIGNERS)]
    if signed is False:
        cmd += ["--allow-unsigned"]  # a ring made before turns were signed, resumed
    if plan.config.preset:
        cmd += ["--preset", plan.config.preset]
    for text in plan.overrides:
        cmd += ["--set", text]
    return cmd


def _site_keys(plan: ExperimentPlan, logs: Path) -> dict[str, str]:
    """Each site's signing key (created here), as the ring's signers; also written as the
    signers file (``keys/signers.txt``) every site's process trusts at first contact."""
    from ..io.atomic import atomic_write_text
    from ..ring.signing import TurnSigner

    keys = {s.name: TurnSigner.load_or_create(s.name, logs / "keys" / f"{s.name}.ed25519").public for s in plan.sites}
    atomic_write_text(logs / "keys" / SIGNERS, "".join(f"{site} {key}\n" for site, key in keys.items()))
    return keys


def _stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()


def run_ring(plan: ExperimentPlan, token: CancelToken, resume: bool) -> Generator[Progress, None, dict]:
    """Create (or, with ``resume``, continue) the ring, run one process per site
    until it stops, write ``models/MSL/model.safetensors``; returns the ring's summary."""
    url = plan.server_url
    logs = plan.out / "ring"
    logs.mkdir(parents=True, exist_ok=True)
    patience, max_turns = ring_budget(plan.config, len(plan.sites))
    m = _read(url)
    if m is None:
        if not plan.server:
            Path(url).mkdir(parents=True, exist_ok=True)
        config = RingConfig(
            sites=tuple(s.name for s in plan.sites),
            order="fixed",
            seed=plan.config.seed,
            patience=patience,
            min_delta=plan.config.min_delta,
            convergence="global",
            max_turns=max_turns,
            epochs_per_turn=1,
            signers=_site_keys(plan, logs),
        ).validate()
        with open_transport(url) as t:
            t.connect()
            m = init_ring(t, config)
        yield Progress(STAGE, 0, max_turns, f"ring created at {url}")
    else:
        if not resume:
            raise HemaRelayError(
                f"A ring already exists at {url}; give another --server folder, "
                "or --resume to continue this experiment's ring."
            )
        if tuple(m.config.sites) != tuple(s.name for s in plan.sites):
            raise HemaRelayError(
                f"The ring at {url} is for sites {', '.join(m.config.sites)}, not "
                f"{', '.join(s.name for s in plan.sites)}."
            )
        yield Progress(
            STAGE, m.turns_done, max_turns, f"continuing the ring at {url} ({m.turns_done} turns done, {m.status})"
        )
    if m.status == "running":
        yield from _run_sites(plan, url, logs, max_turns, token, signed=bool(m.config.signers) and not m.legacy)
        m = _read(url)
        if m is None or m.status == "running":
            raise HemaRelayError(f"The ring at {url} did not finish; see the site logs in {logs}.")
    with open_transport(url) as t:
        t.connect()
        data, ref, m = fetch_weights(
            t, "best", require_signed=bool(m.config.signers) and not m.legacy, pin=_signers_pin(logs)
        )
    metrics = {"val_loss": m.best.val_loss} if m.best else {}
    out = plan.model_path("MSL")
    out.parent.mkdir(parents=True, exist_ok=True)
    save_ring_weights_as_model(
        decode_weights(data, f"weights version {ref.version}"),
        m.model_id or "",
        out,
        version=f"ring version {ref.version} from site {ref.site}",
        metrics=metrics,
    )
    turns = m.turn_records
    return {
        "server": url,
        "status": m.status,
        "turns": m.turns_done,
        "best_version": ref.version,
        "best_site": ref.site,
        "best_val_loss": m.best.val_loss if m.best else None,
        "convergence": (
            {"rule": m.convergence.rule, "explanation": m.convergence.explanation} if m.convergence else None
        ),
        "history": [
            {
                "turn": r.turn + 1,
                "site": r.site,
                "version": r.version,
                "train_loss": r.metrics.get("train_loss"),
                "val_loss": r.metrics.get("val_loss"),
                "improved": r.improved,
                "train_s": round(r.train_s, 2),
                "overhead_s": round(r.overhead_s, 3),
            }
            for r in turns
        ],
        "train_s": round(sum(r.train_s for r in turns), 2),
        "overhead_s": round(sum(r.overhead_s for r in turns), 3),
    }


def _run_sites(
    plan: ExperimentPlan, url: str, logs: Path, max_turns: int, token: CancelToken, signed: bool = True
) -> Generator[Progress, None, None]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    procs, files = [], []
    try:
        for site in plan.sites:
            fh = open(logs / f"site-{site.name}.log", "a")
            files.append(fh)
            procs.append(
                subprocess.Popen(
                    _site_command(plan, site, logs / f"audit-{site.name}.jsonl", signed),
                    cwd=ROOT,
                    env=env,
                    stdout=fh,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )
            )
        clock, seen = EtaClock(), -1
        start = None
        while any(p.poll() is None for p in procs):
            if token.cancelled:
                raise CancelledError("Experiment cancelled during the ring; --resume continues it.")
            m = _read(url)
            if m is not None and m.turns_done != seen:
                if start is None:
                    start = m.turns_done
                    clock = EtaClock()
                seen = m.turns_done
                last = m.turn_records[-1] if m.turn_records else None
                msg = (
                    f"turn {seen} of at most {max_turns}: site {last.site}, val loss "
                    f"{last.metrics['val_loss']:.4f}, patience {m.patience_counter}/{m.config.patience}"
                    if last
                    else f"waiting for site {m.next_site}'s first turn"
                )
                yield Progress(STAGE, seen, max_turns, msg, clock.eta(seen - start, max_turns - start))
            time.sleep(1.0)
        failed = [(s.name, p.returncode) for s, p in zip(plan.sites, procs) if p.returncode != 0]
        if failed:
            tail = ""
            name = failed[0][0]
            log_text = (logs / f"site-{name}.log").read_text(errors="replace").strip().splitlines()
            if log_text:
                tail = f" Last line: {log_text[-1][:300]}"
            raise HemaRelayError(
                f"The ring process of site {name} failed (exit status {failed[0][1]}); "
                f"its log is {logs / f'site-{name}.log'}.{tail}"
            )
    finally:
        _stop(procs)
        for fh in files:
            fh.close()
