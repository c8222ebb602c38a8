"""The simulator in CI: f Byzantine of 3f+1 never break safety and never stall after GST; twins
beyond f (2 of 4) must fork, which shows the checker can see a fork. `slow` runs thousands."""

from __future__ import annotations

import pytest

from fedray.consensus.sim import SimConfig, main, run


def totals(cfg: SimConfig, schedules: int) -> dict[str, int]:
    rs = run(cfg, schedules)
    return {
        "safety": sum(r.safety_violations for r in rs),
        "false_evidence": sum(r.false_evidence for r in rs),
        "liveness": sum(r.liveness_failure for r in rs),
        "evidence": sum(r.evidence for r in rs),
        "min_height": min(r.heights_committed for r in rs),
        "max_rounds": max(r.rounds_after_gst for r in rs),
    }


def test_one_byzantine_of_four_is_safe_and_live() -> None:
    t = totals(SimConfig(byzantine=1, heights=3, seed=11), 150)
    assert t["safety"] == t["false_evidence"] == t["liveness"] == 0
    assert t["evidence"] > 0  # the equivocations were seen and proven
    assert t["min_height"] >= 3


def test_one_twin_of_four_is_safe_and_live() -> None:
    t = totals(SimConfig(twins=1, heights=3, seed=12), 80)
    assert t["safety"] == t["false_evidence"] == t["liveness"] == 0


def test_two_faulty_of_seven_are_safe_and_live() -> None:
    t = totals(SimConfig(validators=7, byzantine=1, twins=1, heights=2, seed=13), 25)
    assert t["safety"] == t["false_evidence"] == t["liveness"] == 0


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
        "max_rounds_after_gst",
        "evidence",
        "schedules_per_s",
    } <= set(fields)


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
        (SimConfig(validators=4, twins=1, heights=4, seed=101), 1000),
        (SimConfig(validators=7, byzantine=1, twins=1, heights=3, seed=102), 300),
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
