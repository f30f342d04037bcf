"""core.site.scheduler: the site's scheduling rules, without Qt."""

from __future__ import annotations

from dataclasses import replace

from core.ring.manifest import RingConfig, TurnRecord, new_manifest
from core.ring.turn import TurnOutcome
from core.site.scheduler import RETRY_AFTER_FAILURE_S, SiteScheduler, TurnEnd
from core.site.setup import SiteSetup


def _record(turn: int = 2, version: int = 3) -> TurnRecord:
    return TurnRecord(
        turn=turn,
        round=1,
        site="a",
        version=version,
        weights_file="w",
        weights_sha256="0" * 64,
        parent_version=version - 1,
        epochs=1,
        metrics={"val_loss": 0.25},
        n_examples=10,
        improved=True,
        patience_counter=0,
        optimizer_carried=True,
        started_at="t0",
        finished_at="t1",
        train_s=1.0,
        overhead_s=0.1,
    )


def test_evaluations_run_one_at_a_time_in_order_without_duplicates():
    s = SiteScheduler(SiteSetup())
    for v in (3, 4, 3):
        s.ask_evaluation(v)
    assert s.queue == [3, 4]
    assert s.next_evaluation(busy=True) is None  # a job is still running
    v = s.next_evaluation(busy=False)
    s.evaluation_started(v)
    assert v == 3 and s.next_evaluation(busy=False) is None  # one at a time
    s.ask_evaluation(3)  # asked again while it runs: not queued twice
    assert s.queue == [4]
    s.evaluation_ended()
    assert s.next_evaluation(busy=False) == 4 and s.queue == []


def test_quiet_evaluations_report_nothing_unless_asked_for_loudly():
    s = SiteScheduler(SiteSetup())
    s.ask_unscored([1, 2])
    assert s.queue == [1, 2] and not s.tells(1) and not s.tells(2)
    s.ask_evaluation(2)  # the user asks: problems are reported again
    assert s.tells(2) and s.queue == [1, 2]
    s.evaluation_started(s.next_evaluation(busy=False))
    s.ask_unscored([1, 2, 5])
    assert s.queue == [2, 5]  # the running one and the queued one are not added again


def test_automatic_turns_follow_the_switch_and_back_off_after_a_failure():
    s = SiteScheduler(SiteSetup())
    assert not s.should_take_turn(my_turn=True, now=0.0)  # switched off
    s.set_keep_taking(True)
    assert s.setup.keep_taking_turns and s.should_take_turn(my_turn=True, now=0.0)
    assert not s.should_take_turn(my_turn=False, now=0.0)
    s.turn_started(automatic=True)
    assert not s.should_take_turn(my_turn=True, now=0.0)  # one turn at a time
    end = s.turn_failed("server full", now=100.0)
    assert end.how is TurnEnd.FAILED and end.automatic and not end.alert  # no dialog overnight
    assert not s.should_take_turn(my_turn=True, now=100.0 + RETRY_AFTER_FAILURE_S - 1)
    assert s.should_take_turn(my_turn=True, now=100.0 + RETRY_AFTER_FAILURE_S)
    s.set_keep_taking(True)  # switching it again forgets the failure
    assert s.should_take_turn(my_turn=True, now=101.0)


def test_a_failed_turn_the_user_started_alerts():
    s = SiteScheduler(SiteSetup())
    s.turn_started(automatic=False)
    end = s.turn_failed("no approved cases", now=5.0)
    assert end.alert and end.message == "no approved cases" and not s.training


def test_cancelling_switches_keep_taking_off():
    s = SiteScheduler(replace(SiteSetup(), keep_taking_turns=True))
    s.turn_started(automatic=True)
    end = s.turn_cancelled()
    assert end.how is TurnEnd.CANCELLED and not end.alert and not end.published
    assert "nothing was published" in end.message
    assert not s.setup.keep_taking_turns and not s.should_take_turn(my_turn=True, now=0.0)


def test_finished_turns_say_what_happened():
    s = SiteScheduler(SiteSetup())
    m = new_manifest(RingConfig(sites=("a", "b")))
    s.turn_started(automatic=False)
    end = s.turn_finished(TurnOutcome(True, m, _record()))
    assert end.published and not end.alert and "Turn 3 done: weights v3 published" in end.message
    assert "0.25" in end.message and not s.training
    s.turn_started(automatic=False)
    end = s.turn_finished(TurnOutcome(False, replace(m, status="converged")))
    assert end.how is TurnEnd.NOT_NEEDED and "converged" in end.message
