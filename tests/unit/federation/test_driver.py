"""The run driver's policy and validator health, stepped without Ray or a clock."""

from __future__ import annotations

import dataclasses

import pytest

from fedray.federation.driver import (
    DispatchRound,
    FaultPlan,
    GovernanceStep,
    KillPool,
    KillValidator,
    Phase,
    RecordRound,
    RunError,
    RunPolicy,
    Tick,
    ValidatorHealth,
)
from fedray.node.views import RoundInfo, RoundResultView


def result(r: int) -> RoundResultView:
    return RoundResultView(r, 1, 2, "quota", b"a", b"b", 4, 4, 4, 0, 0, (), ())


def info(height: int, round_: int, open_: bool, *done: int) -> RoundInfo:
    results = tuple(result(r) for r in done)
    return RoundInfo(
        height, round_, open_, 0, 0, b"g%d" % round_, (), 0, 1, "0.1", "fedavg", results
    )


def kinds(actions: list[object]) -> list[str]:
    return [type(a).__name__ for a in actions]


def test_a_round_is_dispatched_once_and_recorded_once() -> None:
    policy = RunPolicy(rounds=2, stall_limit_s=60)
    assert kinds(policy.observe(Tick(0, info(1, 0, True)))) == ["DispatchRound"]
    assert policy.observe(Tick(1, info(2, 0, True))) == []  # still open: nothing new
    actions = policy.observe(Tick(2, info(3, 1, True, 0)))
    # the opened round goes out first: its clients train while round 0 is recorded
    assert kinds(actions) == ["DispatchRound", "RecordRound"]
    assert actions[0] == DispatchRound(1, b"g1")
    # the view repeats round 0's result: it is not recorded twice
    assert kinds(policy.observe(Tick(3, info(4, 1, True, 0)))) == []
    assert policy.phase is Phase.TRAINING
    assert kinds(policy.observe(Tick(4, info(5, 1, False, 0, 1)))) == ["RecordRound"]
    assert policy.phase is Phase.FINISHED and policy.recorded == 2
    assert policy.observe(Tick(5, info(6, 1, False, 0, 1))) == []


def test_results_are_recorded_in_round_order_and_capped_at_the_run_length() -> None:
    policy = RunPolicy(rounds=2, stall_limit_s=60)
    actions = policy.observe(Tick(0, info(9, 3, False, 2, 0, 1)))
    assert [a.result.round for a in actions if isinstance(a, RecordRound)] == [0, 1]


def test_a_chain_without_progress_stops_the_run() -> None:
    policy = RunPolicy(rounds=3, stall_limit_s=10)
    policy.observe(Tick(0, info(5, 0, True)))
    policy.observe(Tick(9, info(5, 0, True)))
    policy.observe(Tick(15, info(6, 0, True)))  # progress at 15 resets the clock
    policy.observe(Tick(24, info(6, 0, True)))
    with pytest.raises(RunError, match="no progress for 10 s at height 6"):
        policy.observe(Tick(25.5, info(6, 0, True)))


def test_faults_are_injected_when_their_round_opens() -> None:
    policy = RunPolicy(rounds=5, stall_limit_s=60, faults=FaultPlan(1, 2, validators=4))
    assert kinds(policy.observe(Tick(0, info(1, 0, True)))) == ["DispatchRound"]
    assert policy.observe(Tick(1, info(2, 1, True, 0)))[:2] == [
        KillPool(0),
        DispatchRound(1, b"g1"),
    ]
    assert KillValidator(3) in policy.observe(Tick(2, info(3, 2, True, 1)))


def test_the_only_validator_is_never_killed() -> None:
    policy = RunPolicy(rounds=5, stall_limit_s=60, faults=FaultPlan(-1, 0, validators=1))
    assert kinds(policy.observe(Tick(0, info(1, 0, True)))) == ["DispatchRound"]


def test_governance_runs_every_tick_and_holds_the_run_until_it_finishes() -> None:
    policy = RunPolicy(rounds=1, stall_limit_s=60, governance=True, governance_grace_s=30)
    assert policy.observe(Tick(0, info(1, 0, True)))[-1] == GovernanceStep(0, b"g0")
    assert policy.observe(Tick(1, info(2, 0, True)))[-1] == GovernanceStep(None, b"g0")
    policy.observe(Tick(2, info(3, 0, False, 0), governance_finished=False))
    assert policy.phase is Phase.GOVERNANCE
    policy.observe(Tick(20, info(4, 0, False, 0), governance_finished=False))
    policy.observe(Tick(21, info(5, 0, False, 0), governance_finished=True))
    assert policy.phase is Phase.FINISHED


def test_governance_that_never_finishes_fails_after_its_grace() -> None:
    policy = RunPolicy(rounds=1, stall_limit_s=600, governance=True, governance_grace_s=30)
    policy.observe(Tick(0, info(1, 0, False, 0), governance_finished=False))
    policy.observe(Tick(29, info(2, 0, False, 0), governance_finished=False))
    with pytest.raises(RunError, match="did not finish within 30 s"):
        policy.observe(Tick(31, info(3, 0, False, 0), governance_finished=False))


def test_a_validator_that_timed_out_is_retried_after_its_back_off() -> None:
    health = ValidatorHealth(3, retry_after_s=2, max_backoff_s=5)
    health.timed_out(0, now=10)
    assert health.live(11) == [1, 2]
    assert health.live(12) == [0, 1, 2]  # retried: not written off
    health.timed_out(0, now=12)  # second in a row: 4 s
    assert health.live(15.9) == [1, 2] and health.live(16) == [0, 1, 2]
    health.timed_out(0, now=16)  # 8 s, capped at 5
    assert health.live(21) == [0, 1, 2]
    health.answered(0)
    health.timed_out(0, now=30)  # the count restarted after an answer: 2 s again
    assert health.live(32) == [0, 1, 2]


def test_a_dead_validator_is_never_asked_again() -> None:
    health = ValidatorHealth(3)
    health.died(2)
    assert health.live(0) == [0, 1] and health.live(1e9) == [0, 1]


def test_when_every_live_validator_backs_off_they_are_all_asked() -> None:
    health = ValidatorHealth(2)
    health.died(1)
    health.timed_out(0, now=0)
    assert health.live(0.5) == [0]


def test_a_resumed_policy_records_only_the_rounds_not_yet_recorded() -> None:
    policy = RunPolicy(rounds=4, stall_limit_s=60, recorded=2, last_result=1)
    actions = policy.observe(Tick(0, info(9, 3, True, 0, 1, 2)))
    assert kinds(actions) == ["DispatchRound", "RecordRound"]  # the open round 3, then round 2
    assert actions[0] == DispatchRound(3, b"g3") and actions[1].result.round == 2


def test_the_stall_clock_starts_when_consensus_does() -> None:
    policy = RunPolicy(rounds=2, stall_limit_s=10)
    policy.observe(Tick(0, info(0, 0, False)))  # before consensus: a resumed round is trained
    policy.consensus_started(100)  # ... for 100 s, which is no stall
    policy.observe(Tick(105, info(0, 0, False)))
    with pytest.raises(RunError):
        policy.observe(Tick(111, info(0, 0, False)))


def test_a_spent_privacy_budget_ends_training_once_every_dispatched_round_is_recorded() -> None:
    policy = RunPolicy(rounds=5, stall_limit_s=60)
    policy.observe(Tick(0, info(1, 0, True)))  # round 0 dispatched
    spent = dataclasses.replace(info(2, 1, False), privacy_exhausted=True)
    assert policy.budget_spent_after is None
    policy.observe(Tick(1, spent))  # round 0 not recorded yet: training goes on
    assert policy.phase is Phase.TRAINING and policy.budget_spent_after is None
    actions = policy.observe(
        Tick(2, dataclasses.replace(info(3, 1, False, 0), privacy_exhausted=True))
    )
    assert kinds(actions) == ["RecordRound"]
    assert policy.budget_spent_after == 0 and policy.phase is Phase.FINISHED
