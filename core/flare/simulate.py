"""``hemarelay flare simulate``: the job in NVFlare's simulator on one machine.

Every site is an NVFlare client process of the simulator, trains on its own
folder's approved cases (given to the clients through ``HEMARELAY_FLARE_DATA``,
never through the job), and the simulated server relays the weights. The
server's run folder (and so :mod:`core.flare.result`) lies under
``WORKSPACE/server``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError, HemaRelayError
from . import require_nvflare
from .result import FlareRecord, find_records
from .sites import DATA_ENV, encode_site_data


@dataclass(frozen=True)
class SimulationResult:
    workspace: Path
    record: FlareRecord
    record_path: Path
    log_tail: str


def run_simulator(
    job_dir: Path,
    workspace: Path,
    site_data: dict[str, Path],
    log_path: Path | None = None,
    timeout_s: float | None = None,
) -> SimulationResult:
    """Run ``job_dir`` with one simulated client per site; raises if the job
    published no finished record."""
    require_nvflare()
    for site, folder in site_data.items():
        if not Path(folder).is_dir():
            raise ConfigError(f"--site {site}={folder}: folder not found.")
    workspace = Path(workspace).resolve()
    if workspace.exists() and any(workspace.iterdir()):
        raise ConfigError(f"{workspace}: the simulator workspace must be new or empty.")
    workspace.mkdir(parents=True, exist_ok=True)
    # The simulator clears its workspace when it starts: its output goes beside it.
    log_path = log_path or workspace.with_name(workspace.name + "-simulator.log")
    env = dict(os.environ, **{DATA_ENV: encode_site_data(site_data)})
    cmd = [
        sys.executable,
        "-m",
        "nvflare.private.fed.app.simulator.simulator",
        str(Path(job_dir).resolve()),
        "-w",
        str(workspace),
        "-c",
        ",".join(site_data),
        "-t",
        str(len(site_data)),
    ]
    with open(log_path, "wb") as log:
        try:
            rc = subprocess.run(
                cmd, stdout=log, stderr=subprocess.STDOUT, env=env, timeout=timeout_s, start_new_session=True
            ).returncode
        except subprocess.TimeoutExpired:
            raise HemaRelayError(
                f"The NVFlare simulator did not finish in {timeout_s:.0f} s; its output is in {log_path}."
            ) from None
    tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-15:])
    records = find_records(workspace)
    record = FlareRecord.read(records[-1]) if records else None
    if rc != 0 or record is None or record.status in ("running", "failed", "stopped") or not record.turns:
        why = site_errors(workspace, site_data)
        raise HemaRelayError(
            f"The NVFlare simulation failed (exit status {rc}"
            f"{'' if record else ', no result published'}): "
            + (f"{record.explanation}; " if record and record.explanation else "")
            + ("; ".join(why) if why else f"last lines of its output:\n{tail}")
            + f"\n(Simulator output: {log_path}; logs under {workspace}.)"
        )
    return SimulationResult(workspace, record, records[-1], tail)


_USER_ERROR_RE = re.compile(r"^core\.(?:[a-z_]+\.)*errors\.\w+: (.+)$", re.MULTILINE)


def site_errors(workspace: Path, site_data: dict[str, Path]) -> list[str]:
    """The user-facing errors (core.errors) that stopped a site's client, from
    each simulated site's own error log (they never reach the server)."""
    found: list[str] = []
    for site in site_data:
        try:
            text = (workspace / site / "error_log.txt").read_text(errors="replace")
        except OSError:
            continue
        for msg in _USER_ERROR_RE.findall(text):
            if msg not in found:
                found.append(msg)
    return found
