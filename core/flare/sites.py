"""Which data folder this NVFlare client trains on.

The job folder is the same for every site and is read by the server, so it
never names a data folder. Each site says where its data is in its own
environment: ``HEMARELAY_FLARE_DATA=/path/to/site`` on a site's NVFlare client,
or, when several sites run on one machine (the simulator, proof-of-concept
mode), ``name=/path`` entries separated by the path separator (``:``). A site
caps the epochs a job may ask of it with ``HEMARELAY_FLARE_MAX_EPOCHS`` (20).
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ConfigError

DATA_ENV = "HEMARELAY_FLARE_DATA"
MAX_EPOCHS_ENV = "HEMARELAY_FLARE_MAX_EPOCHS"  # this site's cap on the epochs a job may ask for


def site_max_epochs(environ: dict[str, str] | None = None) -> int:
    """This site's cap on epochs per turn (the job's setting is only a suggestion)."""
    from ..ring.config import MAX_EPOCHS_PER_TURN

    value = (environ if environ is not None else os.environ).get(MAX_EPOCHS_ENV, "").strip()
    if not value:
        return MAX_EPOCHS_PER_TURN
    if not value.isdigit() or not 1 <= int(value) <= 1000:
        raise ConfigError(f"{MAX_EPOCHS_ENV}={value[:20]!r}: give a number of epochs from 1 to 1000.")
    return int(value)


def encode_site_data(folders: dict[str, Path]) -> str:
    for site, folder in folders.items():
        if os.pathsep in str(folder) or "=" in site:
            raise ConfigError(
                f"Site {site}: the folder {folder} contains '{os.pathsep}'; choose a folder path without it."
            )
    return os.pathsep.join(f"{site}={Path(folder).resolve()}" for site, folder in folders.items())


def site_data_folder(site: str, environ: dict[str, str] | None = None) -> Path:
    value = (environ if environ is not None else os.environ).get(DATA_ENV, "").strip()
    if not value:
        raise ConfigError(
            f"NVFlare site {site}: set {DATA_ENV} to this site's data folder "
            "(the folder whose cases are approved for training) before starting "
            "the NVFlare client."
        )
    entries = value.split(os.pathsep)
    if len(entries) == 1 and "=" not in entries[0]:
        folder = Path(entries[0])
    else:
        mapping = dict(e.split("=", 1) for e in entries if "=" in e)
        if site not in mapping:
            raise ConfigError(
                f"NVFlare site {site}: {DATA_ENV} names no folder for this site "
                f"(it names {', '.join(sorted(mapping)) or 'none'})."
            )
        folder = Path(mapping[site])
    if not folder.is_dir():
        raise ConfigError(f"NVFlare site {site}: data folder {folder} not found.")
    return folder
