"""The site's link to the training ring: background sync, training turns, model versions.

No widgets here: :class:`RingController` owns the timers and the jobs and
says what happened through signals; the ring dock shows it. Every rule about
when to evaluate or train is :class:`core.site.scheduler.SiteScheduler`'s, and
all the work is core's (:mod:`core.site`): the sync poll and evaluations run on
worker threads or in a child process, the training turn in a child process
(:func:`core.site.training.train_my_turn_in_child`), so the GUI thread only
moves events to widgets.

The sync poll runs every ``poll_s`` seconds (and right after a turn). A lost
server shows as "offline" with the reason and the next poll tries again, so
it recovers by itself. New weights are downloaded, verified and evaluated on
the site's reviewed cases, never used until the user chooses them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QTimer, Signal

from core.cases.case_files import Case
from core.cases.worklist import scan_folder
from core.errors import CancelledError, HemaRelayError
from core.ring.errors import ServerUnreachableError
from core.site.autoturn import AutoTurnBudget
from core.site.gates import MIN_CASES_TO_JUDGE, describe, enough, judge
from core.site.scheduler import SiteScheduler, TurnEnded
from core.site.setup import SiteSetup
from core.site.versions import SHIPPED, LocalScore, ModelStore, ModelVersion

from .errors import user_message
from .workers import Job, start_job

if TYPE_CHECKING:  # the sync, evaluation and training modules (and torch) load on first use,
    from core.site.sync import SiteView, SyncResult  # after the window is up


def _sync_once(setup: SiteSetup, token):
    """The ring's sync, imported on the worker: its modules (and torch) never load on the GUI thread."""
    from core.site.sync import sync_once

    return (yield from sync_once(setup, token))


def _name(version: int) -> str:
    return "default" if version == SHIPPED else f"v{version}"


@dataclass(frozen=True)
class SyncStatus:
    state: str  # "not set up", "checking", "connected", "offline", "error"
    message: str = ""
    last_checked: float | None = None  # time.time() of the last successful read
    last_attempt: float | None = None
    local: bool = False  # the embedded ring on this computer: there is no server to connect to

    def text(self) -> str:
        when = time.strftime("%H:%M:%S", time.localtime(self.last_checked)) if self.last_checked else "never"
        if self.state == "connected" and self.local:
            return f"Ring: local (no server), checked {when}"
        if self.state == "connected":
            return f"Ring: connected, checked {when}"
        if self.state == "not set up":
            return "Ring: not set up"
        if self.state == "checking":
            return f"Ring: checking… (last checked {when})"
        return f"Ring: {self.state} (last checked {when}): {self.message}"


class RingController(QObject):
    viewChanged = Signal(object)  # SiteView
    statusChanged = Signal(object)  # SyncStatus
    versionsChanged = Signal(object)  # list[ModelVersion], newest first
    newVersion = Signal(object)  # ModelVersion just downloaded
    refusedChanged = Signal(object)  # tuple[RefusedVersion]: what the signature checks refused
    firstContact = Signal(object)  # FirstContact: a signed ring whose keys nobody here confirmed
    chosenChanged = Signal(object)  # ModelVersion | None
    trainingStarted = Signal()
    trainingProgress = Signal(object)  # core Progress / TrainingProgress
    trainingEnded = Signal(object)  # core.site.scheduler.TurnEnded
    evaluationProgress = Signal(object)
    message = Signal(str)

    def __init__(self, setup: SiteSetup, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.rules = SiteScheduler(setup)
        self.view: SiteView | None = None
        self.status = SyncStatus("not set up" if not setup.configured else "checking")
        self.store: ModelStore | None = None
        self.sync_job: Job | None = None
        self.train_job: Job | None = None
        self.eval_job: Job | None = None
        self._refused: tuple = ()
        self._asked_rings: set[str] = set()  # first contacts already put to the person this session
        self._auto_turns = AutoTurnBudget(setup.max_auto_turns_per_hour)
        self._auto_blocked_said = False
        # stopped (the window is closing): a poll that finishes afterwards is dropped, so
        # no question (a first contact) is put up over a window that is going away
        self._stopped = False
        self._timer = QTimer(self)
        self._timer.timeout.connect(self.poll_now)
        self._apply_interval()

    # ----------------------------------------------------------- set-up
    @property
    def setup(self) -> SiteSetup:
        """The site's set-up, "keep taking my turns" included: the one copy."""
        return self.rules.setup

    def _apply_interval(self) -> None:
        self._timer.setInterval(int(self.setup.poll_s * 1000))

    def start(self) -> None:
        """Begin polling (call once the window is up)."""
        self._stopped = False
        if self.setup.configured:
            self._timer.start()
            self.poll_now()
        else:
            self._set_status(SyncStatus("not set up"))

    def set_setup(self, setup: SiteSetup) -> None:
        changed_server = (setup.server, setup.site) != (self.setup.server, self.setup.site)
        self.rules.setup = setup
        self._apply_interval()
        if changed_server:
            self.view, self.store = None, None
        self.start()

    def stop(self) -> None:
        self._stopped = True
        self._timer.stop()
        for job in (self.sync_job, self.train_job, self.eval_job):
            if job is not None and job.running:
                job.cancel()

    @property
    def training(self) -> bool:
        return self.train_job is not None and self.train_job.running

    # ----------------------------------------------------------- sync
    def check_now(self) -> None:
        """The user asks to check the ring: a first contact declined earlier is asked again."""
        self._asked_rings.clear()
        self.poll_now()

    def poll_now(self) -> None:
        if self._stopped or not self.setup.configured or (self.sync_job is not None and self.sync_job.running):
            return
        setup = self.setup
        self._set_status(SyncStatus("checking", "", self.status.last_checked, time.time(), local=setup.is_local))
        self.sync_job = start_job(
            "Checking the ring",
            lambda token: _sync_once(setup, token),
            on_finished=lambda r, s=setup: self._synced(r, s),
            on_error=lambda exc, s=setup: self._sync_failed(exc, s),
            parent=self,
        )

    @staticmethod
    def _same_ring(a: SiteSetup, b: SiteSetup) -> bool:
        return (a.site, a.server, a.key_file, a.known_hosts) == (b.site, b.server, b.key_file, b.known_hosts)

    def _synced(self, result: SyncResult, setup: SiteSetup) -> None:
        if self._stopped or not self._same_ring(setup, self.setup):
            return  # another server or site was chosen while this poll ran
        now = time.time()
        self.view = result.view
        self._set_status(SyncStatus("connected", result.view.describe(), now, now, setup.is_local))
        store = ModelStore.for_ring(result.view.manifest.ring_id)
        ring_changed = self.store is None or self.store.ring_id != store.ring_id
        self.store = store
        refused_changed = result.refused != self._refused
        self._refused = result.refused  # before the view: "Train my turn" depends on it
        self.viewChanged.emit(result.view)
        for problem in result.problems:
            self.message.emit(problem)
        if refused_changed:
            self.refusedChanged.emit(result.refused)
            for r in result.refused[:1]:  # once per change, not every poll
                self.message.emit(r.describe())
        contact = result.first_contact
        if contact is not None and contact.ring_id not in self._asked_rings:
            self._asked_rings.add(contact.ring_id)  # asked once a session; "Check the ring now" asks again
            self.firstContact.emit(contact)
        if ring_changed or result.new_versions:
            self._emit_versions()
        if ring_changed:
            self.chosenChanged.emit(self.chosen())
        for v in sorted(result.new_versions, key=lambda v: v.version):
            self.newVersion.emit(v)
            self.message.emit(
                f"New model weights v{v.version} from site {v.site} were downloaded and "
                "verified; evaluating them on this site's reviewed cases."
            )
            self.evaluate(v.version)
        if ring_changed:  # versions kept earlier but never scored (e.g. no reviewed cases then)
            self.rules.ask_unscored([v.version for v in self.versions() if v.score is None])
            self._next_evaluation()
        self._maybe_take_turn()

    def confirm_keys(self) -> None:
        """The person confirmed the ring's signing keys (first contact): pin them, read again."""
        from core.site.connection import confirm_keys

        if self.view is None:
            return
        try:
            confirm_keys(self.setup, self.view.manifest)
        except HemaRelayError as exc:
            self.message.emit(str(exc))
            return
        self.message.emit("The ring's signing keys are confirmed; this site checks every version against them.")
        self.poll_now()

    def _sync_failed(self, exc: BaseException, setup: SiteSetup) -> None:
        if self._stopped or not self._same_ring(setup, self.setup):
            return
        state = "offline" if isinstance(exc, ServerUnreachableError) else "error"
        retry = f" Trying again every {self.setup.poll_s:g} s."
        self._set_status(
            SyncStatus(
                state,
                user_message(exc, "Checking the ring") + retry,
                self.status.last_checked,
                time.time(),
                setup.is_local,
            )
        )

    def _set_status(self, s: SyncStatus) -> None:
        self.status = s
        self.statusChanged.emit(s)

    # ----------------------------------------------------------- versions
    def versions(self) -> list[ModelVersion]:
        if self.store is None:
            return []
        try:
            return self.store.versions()
        except HemaRelayError as exc:
            self.message.emit(str(exc))
            return []

    def chosen(self) -> ModelVersion | None:
        try:
            return self.store.chosen() if self.store is not None else None
        except HemaRelayError as exc:
            self.message.emit(str(exc))
            return None

    def model_path(self, v: ModelVersion) -> Path:
        assert self.store is not None
        return self.store.path(v)

    def _emit_versions(self) -> None:
        self.versionsChanged.emit(self.versions())

    def use_version(self, version: int | None) -> None:
        """Use ``version`` for predictions from now on (an older one rolls back)."""
        if self.store is None:
            return
        try:
            v = self.store.choose(version)
        except HemaRelayError as exc:
            self.message.emit(str(exc))
            return
        self._emit_versions()
        self.chosenChanged.emit(v)
        self.message.emit(f"Using model {v.label()} for predictions." if v else "No model in use.")

    # ----------------------------------------------------------- evaluation
    def _eval_cases(self) -> list[Case]:

        if not self.setup.data_folder:
            raise HemaRelayError(
                "No site data folder is set; choose it under Training > Site and server "
                "to evaluate new weights on this site's reviewed cases."
            )
        return scan_folder(self.setup.data_folder).reviewed()

    def evaluate(self, version: int, quiet: bool = False) -> None:
        """Score a kept version on the site's reviewed cases (queued; one at a time)."""
        self.rules.ask_evaluation(version, quiet)
        self._next_evaluation()

    def _next_evaluation(self) -> None:
        if self.store is None:
            return
        version = self.rules.next_evaluation(busy=self.eval_job is not None and self.eval_job.running)
        if version is None:
            return
        from core.site.evaluate import held_out_cases, not_enough_cases, score_model_in_child

        store = self.store
        try:
            v = store.get(version)
            reviewed = self._eval_cases()
            if not reviewed:
                raise HemaRelayError("no case at this site is marked 'reviewed' with a saved mask yet.")
            # never judged on the cases this site trained it on (core.site.gates)
            cases, n_excluded = held_out_cases(reviewed, store.trained_cases().used_by(version))
        except HemaRelayError as exc:
            if self.rules.tells(version):
                self.message.emit(f"Model {_name(version)} was not evaluated: {exc}")
            self._next_evaluation()
            return
        self.rules.evaluation_started(version)
        if len(cases) < MIN_CASES_TO_JUDGE:  # too few cases it did not learn: no number to rely on
            self._scored(store, version, not_enough_cases(n_excluded, len(cases)))
            return
        path, label = store.path(v), _name(version)
        self.eval_job = start_job(
            f"Evaluating model {label}",
            lambda token: score_model_in_child(path, cases, label, token, n_excluded),
            on_progress=self.evaluationProgress.emit,
            on_finished=lambda score, vv=version, st=store: self._scored(st, vv, score),
            on_error=lambda exc, vv=version: self._score_failed(vv, exc),
            parent=self,
        )

    def _scored(self, store: ModelStore, version: int, score: LocalScore) -> None:
        self.rules.evaluation_ended()
        try:
            store.set_score(version, score)
        except HemaRelayError as exc:
            self.message.emit(str(exc))
        current = self.chosen()
        versus = ""
        if current is not None and current.version != version and current.score is not None:
            versus = f"; the model in use ({current.short()}): {describe(current.score)}"
        try:
            verdict = judge(store.get(version), current)
        except HemaRelayError:
            verdict = None
        marked = f" Marked: {verdict.text()}." if verdict is not None and not verdict.ok and enough(score) else ""
        self.message.emit(f"Model {_name(version)}: {describe(score)}{versus}.{marked}")
        self._emit_versions()
        self._next_evaluation()

    def _score_failed(self, version: int, exc: BaseException) -> None:
        self.rules.evaluation_ended()
        if not isinstance(exc, CancelledError):
            self.message.emit(f"Model {_name(version)} could not be evaluated: {user_message(exc, 'Evaluation')}")
        self._next_evaluation()

    # ----------------------------------------------------------- training
    def set_keep_taking(self, on: bool) -> None:
        self.rules.set_keep_taking(on)
        self._maybe_take_turn()

    def _maybe_take_turn(self) -> None:
        if self.view is None or not self.rules.should_take_turn(self.view.my_turn, time.time()):
            return
        if self._refused:
            return  # the ring failed this site's signature checks: never train on it automatically
        now = time.time()
        self._auto_turns.per_hour = self.setup.max_auto_turns_per_hour
        if not self._auto_turns.allow(now):
            if not self._auto_blocked_said:
                self.message.emit(self._auto_turns.why_not(now))
                self._auto_blocked_said = True
            return
        self._auto_blocked_said = False
        self._auto_turns.record(now)
        self.train(automatic=True)

    def can_train(self) -> bool:
        return (
            not self.training
            and self.view is not None
            and self.view.my_turn
            and self.status.state == "connected"
            and not self._refused
        )

    def train(self, automatic: bool = False) -> None:
        if self.training:
            return
        from core.site.training import plan_turn, train_my_turn_in_child

        self.rules.turn_started(automatic)
        setup = self.setup
        try:  # checked here, before any process starts: the folder, the preset's minimum
            plan = plan_turn(setup)
        except HemaRelayError as exc:
            self._turn_ended(self.rules.turn_failed(user_message(exc, "Training this site's turn"), time.time()))
            return
        self.message.emit(plan.describe())
        self.train_job = start_job(
            "Training this site's turn",
            lambda token: train_my_turn_in_child(setup, token),
            on_progress=self.trainingProgress.emit,
            on_finished=lambda outcome: self._turn_ended(self.rules.turn_finished(outcome)),
            on_error=self._train_failed,
            parent=self,
        )
        self.trainingStarted.emit()

    def cancel_training(self) -> None:
        if self.train_job is not None and self.train_job.running:
            self.train_job.cancel()

    def _train_failed(self, exc: BaseException) -> None:
        if isinstance(exc, CancelledError):
            self._turn_ended(self.rules.turn_cancelled())
        else:
            self._turn_ended(self.rules.turn_failed(user_message(exc, "Training this site's turn"), time.time()))

    def _turn_ended(self, end: TurnEnded) -> None:
        self.trainingEnded.emit(end)
        self.poll_now()
