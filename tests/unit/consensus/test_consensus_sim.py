"""The simulator in CI: f Byzantine of 3f+1, whatever they do, never break safety and never stall
after GST; twins beyond f (2 of 4) must fork, which shows the checker can see a fork. `slow` runs
thousands of schedules."""

from __future__ import annotations

from dataclasses import replace

import pytest
from consensus_harness import CHAIN, KEYS, Harness, block, vote

from fedray.consensus.sim import SimConfig, main, run
from fedray.consensus.sim_app import SimApp
from fedray.consensus.sim_byzantine import BEHAVIOURS
from fedray.consensus.sim_check import Checker, ScheduleResult, round_bound
from fedray.consensus.sim_node import HONEST, SimNode
from fedray.core.block import PRECOMMIT, CommitCertificate
from fedray.core.devchain import dev_genesis
from fedray.core.state import State


def dev_state() -> State:
    return dev_genesis("sim-test", n_validators=1, n_accounts=0)[0].state()


def totals(cfg: SimConfig, schedules: int) -> dict[str, int]:
    rs = [r for r in run(cfg, schedules) if not r.beyond_bound]
    return {
        "safety": sum(r.safety_violations for r in rs),
        "false_evidence": sum(r.false_evidence for r in rs),
        "liveness": sum(r.liveness_failure for r in rs),
        "evidence": sum(r.evidence for r in rs),
        "min_height": min(r.heights_committed for r in rs),
        "max_rounds": max(r.rounds_after_gst for r in rs),
        "counted": len(rs),
    }


def test_one_byzantine_of_four_is_safe_and_live() -> None:
    t = totals(SimConfig(byzantine=1, heights=3, seed=11), 120)
    assert t["safety"] == t["false_evidence"] == t["liveness"] == 0
    assert t["evidence"] > 0  # the equivocations were seen and proven
    assert t["min_height"] >= 3 and t["counted"] >= 110


@pytest.mark.parametrize("behaviour", BEHAVIOURS)
def test_each_byzantine_behaviour_alone_is_safe_and_live(behaviour: str) -> None:
    cfg = SimConfig(byzantine=1, heights=3, behaviours=(behaviour,), seed=30)
    t = totals(cfg, 12)
    assert t["safety"] == t["false_evidence"] == t["liveness"] == 0


def test_one_twin_of_four_is_safe_and_live() -> None:
    t = totals(SimConfig(twins=1, heights=3, seed=12), 60)
    assert t["safety"] == t["false_evidence"] == t["liveness"] == 0


def test_two_faulty_of_seven_with_unequal_powers_are_safe_and_live() -> None:
    cfg = SimConfig(validators=7, byzantine=1, twins=1, heights=2, seed=13, powers="random")
    t = totals(cfg, 20)
    assert t["safety"] == t["false_evidence"] == t["liveness"] == 0


def test_a_standby_node_follows_the_chain() -> None:
    rs = run(SimConfig(byzantine=1, standby=1, heights=3, seed=14), 10)
    assert all(r.failed_check is None for r in rs)


def test_two_twins_of_four_fork_and_the_cli_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["--validators", "4", "--twins", "2", "--schedules", "40", "--seed", "0", "--heights", "2"]
    )
    line = capsys.readouterr().out.strip()
    assert code == 1
    assert line.startswith("schedules=40 ") and "safety_violations=0 " not in line


def test_cli_summary_line_and_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--validators", "4", "--byzantine", "1", "--schedules", "5", "--heights", "2"])
    (line,) = capsys.readouterr().out.strip().splitlines()
    fields = dict(kv.split("=") for kv in line.split())
    assert code == 0 and fields["schedules"] == "5" and fields["safety_violations"] == "0"
    assert {
        "heights_committed",
        "liveness_failures",
        "beyond_bound",
        "max_rounds_after_gst",
        "round_bound",
        "evidence",
        "schedules_per_s",
    } <= set(fields)


def test_liveness_counts_rounds_per_height_from_gst() -> None:
    """Rounds after GST count from the highest honest round at GST, for every later height, and
    more than the bound (2(k+1)+2, k the longest run of faulty proposers) is a failure."""
    faulty = frozenset({KEYS[0].public_key})
    result = ScheduleResult(0)
    check = Checker(CHAIN, result, faulty, bounded=True)
    state = Harness(KEYS[1]).state
    bound = round_bound(state.schedule, faulty)
    assert bound == 6  # equal powers, one faulty validator: runs of k = 1 faulty proposer
    node = SimNode(1, KEYS[1], HONEST, SimApp(dev_state(), KEYS[1]), state.schedule, 0)
    b = block(1)
    votes = [vote(k, PRECOMMIT, 0, b.hash).vote for k in KEYS[1:]]
    cert = CommitCertificate.from_votes(votes)
    check.decided(node, replace(state, round=9), b, cert)  # before GST: not counted
    assert result.rounds_after_gst == 0
    check.at_gst([replace(state, round=3)])
    check.decided(node, replace(state, round=3 + bound), b, cert)
    assert result.rounds_after_gst == bound and not result.liveness_failure
    check.decided(node, replace(state, round=4 + bound), b, cert)
    assert result.liveness_failure and result.failed_check == "liveness"


def test_schedules_are_reproducible_from_the_seed() -> None:
    cfg = SimConfig(byzantine=1, heights=2, seed=3)
    a = [(r.heights_committed, r.events, r.evidence, r.end_ms) for r in run(cfg, 5)]
    b = [(r.heights_committed, r.events, r.evidence, r.end_ms) for r in run(cfg, 5)]
    assert a == b


@pytest.mark.slow
@pytest.mark.parametrize(
    ("cfg", "schedules"),
    [
        (SimConfig(validators=4, byzantine=1, heights=4, seed=100), 1000),
        (SimConfig(validators=4, twins=1, heights=4, seed=101), 600),
        (SimConfig(validators=7, byzantine=2, heights=3, seed=102), 300),
        (SimConfig(validators=7, byzantine=1, twins=1, heights=3, seed=105), 200),
        (SimConfig(validators=4, heights=5, seed=103, max_crashes=2), 500),
    ],
)
def test_many_schedules_within_f_are_safe_and_live(cfg: SimConfig, schedules: int) -> None:
    t = totals(cfg, schedules)
    assert t["safety"] == t["false_evidence"] == t["liveness"] == 0


@pytest.mark.slow
def test_many_twin_schedules_beyond_f_find_forks() -> None:
    rs = run(SimConfig(validators=4, twins=2, heights=3, seed=104), 300)
    assert sum(1 for r in rs if r.safety_violations) >= 10
