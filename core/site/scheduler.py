"""The site's scheduling rules, without Qt: which model version to evaluate
next, when to take a turn by itself, and what a finished turn means.

The desktop application's :class:`app.ring_controller.RingController` owns the
timers and runs the jobs; every decision about them is made here, so it can be
tested without a window:

- evaluations run one at a time, in the order asked; a version asked for again
  is not queued twice; a "quiet" evaluation (a version kept earlier but never
  scored) reports nothing when it cannot run;
- with "keep taking my turns" on, a turn starts by itself whenever it is this
  site's turn and none is running, except within :data:`RETRY_AFTER_FAILURE_S`
  of a failed one (no tight retry loop overnight);
- cancelling a turn switches "keep taking my turns" off (it means "not now");
- a finished turn is a :class:`TurnEnded`: published, not needed (the ring had
  ended), cancelled or failed, and whether the user must be alerted (a failure
  of a turn the user started; automatic ones only show in the panel and status
  bar, so that dialogs never pile up overnight).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from .setup import SiteSetup

if TYPE_CHECKING:  # the turn protocol (and torch) stays out of the application's start-up
    from ..ring.turn import TurnOutcome

RETRY_AFTER_FAILURE_S = 300.0


class TurnEnd(enum.Enum):
    PUBLISHED = "published"
    NOT_NEEDED = "not needed"  # the ring had converged or stopped
    CANCELLED = "cancelled"
    FAILED = "failed"


@dataclass(frozen=True)
class TurnEnded:
    how: TurnEnd
    message: str  # for the user
    automatic: bool  # started by "keep taking my turns"

    @property
    def published(self) -> bool:
        return self.how is TurnEnd.PUBLISHED

    @property
    def alert(self) -> bool:
        """A dialog, not only the status bar: the user's own turn failed."""
        return self.how is TurnEnd.FAILED and not self.automatic


@dataclass
class SiteScheduler:
    setup: SiteSetup  # keep_taking_turns lives here, and only here
    queue: list[int] = field(default_factory=list)  # versions waiting for evaluation
    quiet: set[int] = field(default_factory=set)
    evaluating: int | None = None
    training: bool = False
    automatic: bool = False  # the running (or last) turn was started by itself
    failed_at: float | None = None

    # ----------------------------------------------------------- evaluations
    def ask_evaluation(self, version: int, quiet: bool = False) -> None:
        if version not in self.queue and version != self.evaluating:
            self.queue.append(version)
        if quiet:
            self.quiet.add(version)
        else:
            self.quiet.discard(version)

    def ask_unscored(self, unscored: list[int]) -> None:
        """Versions kept earlier but never scored: evaluate them, quietly."""
        for version in unscored:
            if version not in self.queue and version != self.evaluating:
                self.ask_evaluation(version, quiet=True)

    def next_evaluation(self, busy: bool) -> int | None:
        """The version to evaluate now (taken off the queue), or None."""
        if busy or self.evaluating is not None or not self.queue:
            return None
        return self.queue.pop(0)

    def evaluation_started(self, version: int) -> None:
        self.evaluating = version

    def evaluation_ended(self) -> None:
        self.evaluating = None

    def tells(self, version: int) -> bool:
        """Whether a problem evaluating ``version`` is reported to the user."""
        return version not in self.quiet

    # ----------------------------------------------------------- turns
    def set_keep_taking(self, on: bool) -> None:
        self.setup = replace(self.setup, keep_taking_turns=on)
        self.failed_at = None

    def should_take_turn(self, my_turn: bool, now: float) -> bool:
        """Start a turn by itself now?"""
        if not (self.setup.keep_taking_turns and my_turn and not self.training):
            return False
        return self.failed_at is None or now - self.failed_at >= RETRY_AFTER_FAILURE_S

    def turn_started(self, automatic: bool) -> None:
        self.training, self.automatic = True, automatic

    def turn_finished(self, outcome: TurnOutcome) -> TurnEnded:
        self.training, self.failed_at = False, None
        if outcome.trained and outcome.record is not None:
            r = outcome.record
            return TurnEnded(
                TurnEnd.PUBLISHED,
                f"Turn {r.turn + 1} done: weights v{r.version} published "
                f"(validation loss {r.metrics.get('val_loss', float('nan')):.4g}).",
                self.automatic,
            )
        return TurnEnded(
            TurnEnd.NOT_NEEDED, f"The ring has {outcome.manifest.status}; no turn was needed.", self.automatic
        )

    def turn_cancelled(self) -> TurnEnded:
        self.training = False
        self.set_keep_taking(False)  # cancelling means "not now"
        return TurnEnded(
            TurnEnd.CANCELLED,
            "Training cancelled: the lease was released and nothing was published; the ring is unchanged.",
            self.automatic,
        )

    def turn_failed(self, message: str, now: float) -> TurnEnded:
        self.training, self.failed_at = False, now
        return TurnEnded(TurnEnd.FAILED, message, self.automatic)
