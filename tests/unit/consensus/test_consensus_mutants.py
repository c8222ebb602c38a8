"""Mutation testing: each mutant of the catalogue breaks one rule, the simulator must notice.

The default suite kills a few mutants that die in one or two schedules; `slow` runs the whole
catalogue through the CLI, as CI does."""

from __future__ import annotations

from dataclasses import replace

import pytest

from fedray.consensus import mutants
from fedray.consensus.mutants import CATALOGUE, Mutant, applied, hunt, main
from fedray.consensus.sim import SimConfig, Simulation
from fedray.consensus.work import Work

BY_NAME = {m.name: m for m in CATALOGUE}


def test_the_catalogue_has_at_least_twelve_distinct_mutants() -> None:
    assert len(CATALOGUE) >= 12 and len(BY_NAME) == len(CATALOGUE)


@pytest.mark.parametrize("mutant", CATALOGUE, ids=lambda m: m.name)
def test_a_mutant_is_installed_and_removed(mutant: Mutant) -> None:
    originals = [vars(owner)[name] for owner, name, _ in mutant.patches]
    with applied(mutant):
        assert [vars(o)[n] for o, n, _ in mutant.patches] == [r for _, _, r in mutant.patches]
    assert [vars(owner)[name] for owner, name, _ in mutant.patches] == originals


def test_a_misnamed_target_is_refused() -> None:
    with pytest.raises(AttributeError), applied(Mutant("typo", "", ((Work, "lokc", None),))):
        pass
    assert "lokc" not in vars(Work)


@pytest.mark.parametrize(
    ("name", "budget"),
    [
        ("quorum_at_2f", 6),
        ("no_signature_check", 6),
        ("unverified_catch_up", 30),  # needs a forged catch-up batch to reach a lagging node
        ("no_prevote_timeout", 6),
    ],
)
def test_quick_mutants_are_killed_and_the_kill_is_confirmed(name: str, budget: int) -> None:
    verdict = hunt(BY_NAME[name], budget=budget, seed=0)
    assert verdict.killed and verdict.confirmed, verdict.line()


def test_the_issue_12_stall_is_found_and_the_fix_removes_it() -> None:
    """4 validators, 1 silent Byzantine: a node alone in a later round used to stall its peers."""
    cfg = SimConfig(byzantine=1, heights=3, behaviours=("silent",), max_gst_ms=6000, seed=13)
    assert Simulation(cfg, 0).run().failed_check is None
    with applied(BY_NAME["stale_gossip"]):
        assert Simulation(cfg, 0).run().failed_check == "liveness"


def test_a_harmless_mutant_survives_and_the_cli_exits_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    harmless = Mutant("harmless", "nothing", ((Work, "lock", Work.lock),))
    assert hunt(harmless, budget=3, seed=0).line().endswith("survived 3 schedules")
    monkeypatch.setattr(mutants, "CATALOGUE", (harmless, BY_NAME["quorum_at_2f"]))
    assert main(["--budget", "3"]) == 1
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("harmless") and "survived" in lines[0]
    assert lines[1].startswith("quorum_at_2f") and " killed by safety after 1 " in lines[1]
    assert lines[-1] == "killed 1/2"


def test_hunts_rotate_over_their_scenarios(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []

    def spy(cfg: SimConfig, index: int, chains: object) -> None:
        seen.append(f"{cfg.validators}/{index}")

    monkeypatch.setattr(mutants, "check_schedule", spy)
    hunts = (("a", SimConfig(heights=1)), ("b", replace(SimConfig(heights=1), validators=7)))
    hunt(BY_NAME["no_lock_update"], budget=4, seed=0, hunts=hunts)
    assert seen == ["4/0", "7/0", "4/1", "7/1"]


def test_rates_count_failures_and_the_real_engine_fails_none(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--rates", "--only", "quorum_at_2f", "--budget", "2", "--sizes", "4v"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split() == ["(real", "engine)", "failed", "0/2", "schedules"]
    assert lines[1].startswith("quorum_at_2f") and "failed 2/2 schedules (safety 2)" in lines[1]
    assert lines[-1] == "killed 1/1"


@pytest.mark.slow
def test_every_mutant_is_killed(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--budget", "400"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1] == f"killed {len(CATALOGUE)}/{len(CATALOGUE)}"
