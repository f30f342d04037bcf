"""What an experiment runs: sites, training settings, the ring's budget, and
the output folder's layout with its per-step done markers (for ``--resume``)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError, InputError
from ..io.atomic import atomic_write_text
from ..training.config import TrainingConfig

SITE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
# Settings whose change does not make a finished step's result stale.
_NOT_RESULT_CHANGING = {"threads"}


@dataclass(frozen=True)
class SiteSpec:
    name: str  # "a": model SSL-A, ring site "a"
    data: Path  # a site folder: train/, test/, normal/

    @property
    def ssl_model(self) -> str:
        return f"SSL-{self.name.upper()}"


def parse_site_arg(text: str) -> SiteSpec:
    """``a=DIR`` from the command line."""
    name, sep, path = text.partition("=")
    if not sep or not SITE_NAME.match(name.strip()) or not path.strip():
        raise ConfigError(
            f"--site {text!r}: expected NAME=DIR, e.g. --site a=data/site-a (NAME: letters, digits, - or _)."
        )
    folder = Path(path.strip()).expanduser()
    if not folder.is_dir():
        raise InputError(f"--site {text}: folder {folder} not found.")
    return SiteSpec(name.strip(), folder)


def ring_budget(config: TrainingConfig, n_sites: int) -> tuple[int, int]:
    """(patience, max_turns) for the ring, in turns of one epoch each.

    A turn is one epoch on one site's data. Giving each site ``patience`` and
    ``max_epochs`` of its own epochs, as its SSL run had, means multiplying by
    the number of sites: the ring's global counter sees the sites' validation
    losses in turn, so a patience of ``patience`` turns would stop MSL after
    fewer epochs per site than SSL was allowed.
    """
    return config.patience * n_sites, config.max_epochs * n_sites


@dataclass(frozen=True)
class ExperimentPlan:
    sites: tuple[SiteSpec, ...]
    out: Path
    config: TrainingConfig
    overrides: tuple[str, ...] = ()  # the --set texts, passed on to the ring's site processes
    server: str | None = None  # ring URL; None: a folder inside out/ring
    poll_s: float = 0.5
    backend: str = "auto"
    python: tuple[str, ...] = field(default=())  # interpreter for the site processes (default: this one)

    def __post_init__(self) -> None:
        names = [s.name for s in self.sites]
        if len(names) < 2:
            raise ConfigError("The experiment compares sites: give at least two, e.g. --site a=DIR --site b=DIR.")
        if len({n.lower() for n in names}) != len(names):
            raise ConfigError(f"Site names must differ: {', '.join(names)}.")

    @property
    def models(self) -> list[str]:
        return [s.ssl_model for s in self.sites] + ["MSL"]

    def model_dir(self, model: str) -> Path:
        return self.out / "models" / model

    def model_path(self, model: str) -> Path:
        return self.model_dir(model) / "model.safetensors"

    @property
    def server_url(self) -> str:
        return self.server or str(self.out / "ring" / "server")

    def describe(self) -> dict:
        patience, max_turns = ring_budget(self.config, len(self.sites))
        return {
            "sites": {s.name: str(s.data) for s in self.sites},
            "config": self.config.to_dict(),
            "overrides": list(self.overrides),
            "server": self.server_url,
            "ring": {
                "patience_turns": patience,
                "max_turns": max_turns,
                "epochs_per_turn": 1,
                "order": "fixed",
                "convergence": "global",
                "seed": self.config.seed,
                "min_delta": self.config.min_delta,
            },
        }


class StepLog:
    """``out/steps/<name>.json``: written atomically when a step has finished."""

    def __init__(self, out: Path) -> None:
        self.folder = out / "steps"

    def path(self, name: str) -> Path:
        return self.folder / f"{name}.json"

    def done(self, name: str) -> dict | None:
        p = self.path(name)
        return json.loads(p.read_text()) if p.is_file() else None

    def mark(self, name: str, record: dict) -> dict:
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.path(name), json.dumps(record, indent=1, allow_nan=True) + "\n")
        return record


def check_plan_file(plan: ExperimentPlan, resume: bool) -> None:
    """Refuse to mix two experiments in one folder; record the plan on a fresh start."""
    path = plan.out / "experiment.json"
    now = plan.describe()
    if path.is_file():
        if not resume:
            raise ConfigError(
                f"{plan.out} already holds an experiment; add --resume to continue it, or choose another --out folder."
            )
        saved = json.loads(path.read_text())
        diff = [
            k
            for k in sorted(set(saved["config"]) | set(now["config"]))
            if k not in _NOT_RESULT_CHANGING and saved["config"].get(k) != now["config"].get(k)
        ]
        if saved.get("sites") != now["sites"]:
            diff.append("sites")
        if saved.get("server") != now["server"]:
            diff.append("server")
        if diff:
            raise ConfigError(
                f"{plan.out}: --resume with other settings than the experiment there "
                f"({', '.join(diff)}); use the same settings or another --out folder."
            )
        return
    plan.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(now, indent=1) + "\n")
