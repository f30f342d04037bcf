"""``hemarelay flare job``: the job folder an NVFlare admin submits.

Written with NVFlare's job API (FedJob + ScriptRunner): the server runs
:class:`core.flare.controller.HematomaCyclic`, every client runs
``client_script.py`` in process with the training preset and overrides as its
arguments. The folder names no data folder or path (each site says where its
data is through ``HEMARELAY_FLARE_DATA``, see :mod:`core.flare.sites`), and
``core`` is declared an installed application package, so the job carries no
copy of our code: servers and clients install ``hematoma-relay[flare]``.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError
from ..ring.config import CycleSettings
from . import require_nvflare

CLIENT_SCRIPT = Path(__file__).with_name("client_script.py")
_JOB_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


@dataclass(frozen=True)
class JobSettings:
    sites: tuple[str, ...]
    cycle: CycleSettings = CycleSettings()  # order, seed, patience, min_delta, epochs per turn: the ring's
    preset: str | None = None
    overrides: tuple[str, ...] = ()
    rounds: int = 20
    name: str = "hemarelay-cyclic"
    turn_timeout: int = 0  # seconds a site may take for a turn; 0: no limit

    def validated(self):
        """(settings, model_id): refuses what the ring would refuse, before NVFlare sees it."""
        from ..ring.manifest import RingConfig
        from ..training.config import load_config

        if len(self.sites) < 2:
            raise ConfigError("An NVFlare cyclic job needs at least two sites (--sites a,b).")
        RingConfig.of(self.sites, self.cycle).validate()
        if self.rounds < 1 or self.turn_timeout < 0:
            raise ConfigError("--rounds must be at least 1 and --turn-timeout not negative.")
        if not _JOB_NAME_RE.match(self.name):
            raise ConfigError(f"Job name {self.name!r}: use letters, digits, '-' or '_'.")
        config = load_config(self.preset, None, list(self.overrides))
        for text in self.overrides:
            if any(c.isspace() for c in text):
                raise ConfigError(f"--set {text!r}: no spaces (it becomes a client argument).")
        return self, f"{config.architecture}-ds{config.ds}"


def client_args(s: JobSettings) -> str:
    parts = [] if s.preset is None else ["--preset", s.preset]
    for text in s.overrides:
        parts += ["--set", text]
    return " ".join(parts)


def build_job(s: JobSettings):
    require_nvflare()
    from nvflare.app_common.executors.client_api_executor import ClientAPIExecutor
    from nvflare.client.config import ExchangeFormat
    from nvflare.job_config.api import FedJob

    from .controller import HematomaCyclic

    s, model_id = s.validated()
    job = FedJob(name=s.name, min_clients=len(s.sites), mandatory_clients=list(s.sites))
    job.set_app_packages(["core"])  # installed on every machine: no code copied into the job
    job.to_server(
        HematomaCyclic(
            sites=list(s.sites),
            model_id=model_id,
            job_name=s.name,
            max_rounds=s.rounds,
            patience=s.cycle.patience,
            min_delta=s.cycle.min_delta,
            order=s.cycle.order,
            seed=s.cycle.seed,
            epochs_per_turn=s.cycle.epochs_per_turn,
            turn_timeout=s.turn_timeout,
        )
    )
    # What NVFlare's ScriptRunner builds for an in-process PyTorch script, with the
    # script named relative to the job's custom/ folder (ScriptRunner would record
    # this machine's absolute path of the installed file).
    job.to_clients(
        ClientAPIExecutor(
            execution_mode="in_process",
            task_script_path=CLIENT_SCRIPT.name,
            task_script_args=client_args(s),
            params_exchange_format=ExchangeFormat.PYTORCH,
            server_expected_format=ExchangeFormat.NUMPY,
        )
    )
    job.add_file_to_clients(str(CLIENT_SCRIPT))
    return job


def write_job(s: JobSettings, out: Path) -> Path:
    """Write the job under ``out/<name>``; returns that folder."""
    out = Path(out)
    job = build_job(s)
    target = out / s.name
    if target.exists():
        raise ConfigError(f"{target} exists already; choose another --out or remove it.")
    tmp = out / f".{s.name}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        job.export_job(str(tmp))
        (tmp / s.name).rename(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
