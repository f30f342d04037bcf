"""This site's training turn from the desktop application: its approved cases only.

:func:`train_my_turn` takes one turn of the ring (:func:`core.ring.take_turn`)
with the hematoma trainer on the cases of the site folder marked "approved for
training". It runs in a child process (:func:`train_my_turn_in_child`) so the
application stays responsive; cancelling releases the lease and publishes
nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Generator

from ..cases.case_files import Case
from ..cases.worklist import scan_folder
from ..errors import ConfigError, InputError
from ..progress import CancelToken, Progress
from ..ring.audit import default_audit_path
from ..ring.turn import SiteOptions, TurnOutcome, take_turn
from .setup import SiteSetup, ensure_local_ring, open_site_transport, site_signer, trust_dir

STAGE_PREPARE = "Preparing this site's turn"


def approved_cases(data_folder: str | Path) -> list[Case]:
    """The cases approved for training, with their saved masks."""
    if not str(data_folder):
        raise ConfigError("No site data folder is set: choose it under Training > Site and server.")
    return scan_folder(data_folder).approved()


def stale_approvals(data_folder: str | Path) -> int:
    """Cases approved for training whose mask changed since (no longer approved)."""
    return sum(c.mask_changed for c in scan_folder(data_folder).cases)


def site_options(setup: SiteSetup, poll_s: float = 2.0) -> SiteOptions:
    """The ring options this site's settings decide: its key, pins, caps."""
    return SiteOptions(
        site=setup.site,
        epochs_per_turn=setup.epochs_per_turn,
        poll_s=poll_s,
        retry_for_s=300.0,
        audit_path=default_audit_path(setup.site),
        signer=site_signer(setup),
        trust_dir=trust_dir(setup),
        require_signed=not (setup.allow_unsigned or setup.is_local),
        max_epochs_per_turn=setup.max_epochs_per_turn,
        share_optimizer=setup.share_optimizer,
    )


@dataclass(frozen=True)
class TurnPlan:
    """What a turn would train on, checked before any process starts."""

    cases: tuple[Case, ...]
    min_cases: int
    preset: str

    def describe(self) -> str:
        return (
            f"Training this site's turn on {len(self.cases)} case(s) approved for training "
            f"(preset {self.preset} needs at least {self.min_cases})."
        )


def plan_turn(setup: SiteSetup) -> TurnPlan:
    """The approved cases a turn would use; refuses, with the counts, when there are fewer
    than the preset's minimum (a model trained on one case is not a model)."""
    from ..training.config import load_config

    setup = setup.validated()
    config = load_config(setup.preset, None, list(setup.overrides))
    cases = approved_cases(setup.data_folder)
    stale = stale_approvals(setup.data_folder)
    changed = (
        f" ({stale} case(s) were approved, but their saved mask is not the one approved: it changed, or "
        "was approved before the approved mask was recorded; review and approve them again)"
        if stale
        else ""
    )
    if not cases:
        raise InputError(
            f"No case in {setup.data_folder} is approved for training{changed}: review the masks "
            "and mark cases 'approved for training' first."
        )
    if len(cases) < config.min_approved:
        raise InputError(
            f"Only {len(cases)} case(s) in {setup.data_folder} are approved for training{changed}; "
            f"the training preset '{config.preset}' needs at least {config.min_approved}. "
            "Review and approve more cases first; nothing was started."
        )
    return TurnPlan(tuple(cases), config.min_approved, config.preset)


def train_my_turn(setup: SiteSetup, token: CancelToken, poll_s: float = 2.0) -> Generator[Progress, None, TurnOutcome]:
    from ..training.config import load_config
    from ..training.ring_turn import HematomaTurnTrainer
    from .trained_cases import TrainedCases
    from .versions import ModelStore

    setup = setup.validated()
    plan = plan_turn(setup)
    cases = list(plan.cases)
    yield Progress(STAGE_PREPARE, 0, 0, f"{len(cases)} approved case(s)")
    config = load_config(setup.preset, None, list(setup.overrides))
    trainer = HematomaTurnTrainer(setup.data_folder, config, cases=cases)
    opts = site_options(setup, poll_s)
    with open_site_transport(setup) as t:
        t.connect()
        if setup.is_local:
            ensure_local_ring(setup, t)
        outcome = yield from take_turn(t, trainer, opts, token)
    if outcome.trained and outcome.record is not None:
        # which cases this version learnt: it is never judged on them (core.site.gates)
        TrainedCases(ModelStore.for_ring(outcome.manifest.ring_id).folder).record(
            outcome.record.version, [c.ct_path for c in cases]
        )
    return outcome


def train_my_turn_in_child(setup: SiteSetup, token: CancelToken) -> Generator[Progress, None, TurnOutcome]:
    from ..child_process import run_in_child

    return (yield from run_in_child(train_my_turn, setup, token=token, what="The training process"))
